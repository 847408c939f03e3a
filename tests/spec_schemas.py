"""Response bodies checked against a reference OpenAPI spec's component schemas."""

from __future__ import annotations

import functools
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator

from serviceline.testing import reference


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` and `type: null` become "null"."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if "type" in node and node["type"] is None:
        schema["type"] = "null"
    if node.get("type") == "float":  # Publish's spec types its coordinates so; JSON says number
        schema["type"] = "number"
    if node.get("nullable") is True:
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


class _Loader(yaml.SafeLoader):
    """YAML as JSON reads it: a date stays the string it is (Register's spec has 2023-13-01)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def _document(spec: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.load(reference("specs", spec).read_text(), Loader=_Loader)
    return document


@functools.cache
def _components(spec: str) -> dict[str, Any]:
    components: dict[str, Any] = _json_schema(_document(spec)["components"])
    return components


def conforms(spec: str, body: Any, schema: str) -> None:
    """Validate a body against one of the spec's component schemas."""
    _validate(spec, {"$ref": f"#/components/schemas/{schema}"}, body)


def _validate(spec: str, schema: Any, body: Any) -> None:
    root = {**_json_schema(schema), "components": _components(spec)}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(body)


HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def operations(spec: str) -> set[tuple[str, str]]:
    """Every operation the spec documents, as (METHOD, path)."""
    return {
        (method.upper(), path)
        for path, item in _document(spec)["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def operation(spec: str, method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = _document(spec)["paths"][path][method.lower()]
    return found


def request_schema(spec: str, method: str, path: str) -> Any:
    """The JSON body schema an operation takes."""
    return operation(spec, method, path)["requestBody"]["content"]["application/json"]["schema"]


def resolved(spec: str, schema: Any) -> Any:
    """A schema with its top `$ref` (to a component schema) followed."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = _document(spec)["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def request_conforms(spec: str, method: str, path: str, body: Any) -> None:
    """Validate a client's request body against the operation's."""
    _validate(spec, request_schema(spec, method, path), body)


def answers(spec: str, method: str, path: str, response: httpx.Response) -> Any:
    """A response's body, validated against what the operation documents for its status."""
    documented = operation(spec, method, path)["responses"]
    code = str(response.status_code)
    assert code in documented, f"{method} {path} documents no {code}: {response.text}"
    answer = documented[code]
    if "$ref" in answer:
        answer = _document(spec)["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    body = response.json()
    _validate(spec, answer["content"]["application/json"]["schema"], body)
    return body


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()
