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


@functools.cache
def _components(spec: str) -> dict[str, Any]:
    document = yaml.safe_load(reference("specs", spec).read_text())
    components: dict[str, Any] = _json_schema(document["components"])
    return components


def conforms(spec: str, body: Any, schema: str) -> None:
    """Validate a body against one of the spec's component schemas."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _components(spec)}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(body)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()
