"""A line written as YAML: its services, the entities each owns, and who copies what from whom.

The JSON schema editors check such a file against is this model's (`serviceline line-schema`).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from serviceline.model.topology import Kind, Mechanism, Policy

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
# a field's type, `?` after it when a record may leave it out
FieldType = Annotated[
    str, StringConstraints(pattern=r"^(string|integer|number|boolean|date|datetime)\??$")
]
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "date": date,
    "datetime": datetime,
}
Cron = Annotated[str, StringConstraints(pattern=r"^\S+( \S+){4}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSpec(Strict):
    name: Name
    title: str = Field(min_length=1, description="what people call the service")
    kind: Kind = Kind.SERVICE
    port: int = Field(ge=1024, le=65000, description="its port on the host, before any offset")


class EntitySpec(Strict):
    name: Name
    owner: Name = Field(description="the service that owns it: the only one that writes it")
    key: Name = Field(description="the field whose value names one record")
    fields: dict[Name, FieldType] = Field(
        min_length=1,
        description="every field but the key, each `string`, `integer`, `number`, `boolean`, "
        "`date` or `datetime`, with `?` after it when a record may leave it out",
    )
    description: str = ""
    personal: bool = Field(False, description="about a person: reading it needs a credential")
    seed: int = Field(10, ge=0, le=100_000, description="how many the seed writes at `small`")
    changes_per_day: float = Field(
        24, ge=0, description="how often the default workload writes one, on the simulated clock"
    )
    # of those writes, the shares that add a record and that delete one; the rest change a field
    new_share: float = Field(0.15, ge=0, le=1)
    delete_share: float = Field(0.05, ge=0, le=1)

    def type_of(self, field: str) -> tuple[type, bool]:
        """A field's Python type, and whether a record may leave it out."""
        if field == self.key:
            return str, False
        spelled = self.fields[field]
        return PYTHON_TYPES[spelled.rstrip("?")], spelled.endswith("?")

    @property
    def path(self) -> str:
        """Where the owner's write API serves it: `/products` for `product`."""
        return f"/{self.name}s"


class ScopeSpec(Strict):
    include: dict[str, list[str]] = Field(default_factory=dict)
    exclude: dict[str, list[str]] = Field(default_factory=dict)
    description: str = ""


class EdgeSpec(Strict):
    entity: Name
    consumer: Name
    mechanism: Literal[Mechanism.FEED, Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT] = Mechanism.FEED
    schedule: Cron = Field("*/5 * * * *", description="cron, on the line's simulated clock")
    full_sync_schedule: Cron | None = None
    # the owner's field -> the consumer's column; the key first. None: every field, as named
    mapping: dict[Name, Name] | None = None
    scope: ScopeSpec = Field(default_factory=ScopeSpec)
    policy: Policy = Policy.OWNER_WINS
    editable: list[Name] = Field(
        default_factory=list, description="the consumer's columns its users may change locally"
    )
    description: str = ""


class LineSpec(Strict):
    """A service line: services that own entities, and edges that copy them one way."""

    title: str = Field(min_length=1, description="what the line is called")
    services: list[ServiceSpec] = Field(min_length=1)
    entities: list[EntitySpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> LineSpec:
        services = _unique("services", [s.name for s in self.services])
        _unique("ports", [s.port for s in self.services])
        entities = {e.name: e for e in self.entities}
        _unique("entities", [e.name for e in self.entities])
        for index, entity in enumerate(self.entities):
            if entity.owner not in services:
                raise ValueError(f"entities[{index}].owner: no service named {entity.owner!r}")
            if entity.key in entity.fields:
                raise ValueError(f"entities[{index}].fields: {entity.key!r} is the key")
        for index, edge in enumerate(self.edges):
            _check_edge(f"edges[{index}]", edge, services, entities)
        _unique("edges", [f"{e.entity}.{e.consumer}" for e in self.edges])
        return self

    def entity(self, name: str) -> EntitySpec:
        return next(entity for entity in self.entities if entity.name == name)

    def mapping(self, edge: EdgeSpec) -> dict[str, str]:
        entity = self.entity(edge.entity)
        return edge.mapping or {entity.key: entity.key, **{f: f for f in entity.fields}}


def _unique(what: str, names: list[Any]) -> set[Any]:
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: {name!r} is named twice")
        seen.add(name)
    return seen


def _check_edge(
    at: str, edge: EdgeSpec, services: set[str], entities: dict[str, EntitySpec]
) -> None:
    if edge.entity not in entities:
        raise ValueError(f"{at}.entity: no entity named {edge.entity!r}")
    entity = entities[edge.entity]
    if edge.consumer not in services:
        raise ValueError(f"{at}.consumer: no service named {edge.consumer!r}")
    if edge.consumer == entity.owner:
        raise ValueError(f"{at}.consumer: {edge.consumer} owns {edge.entity}; it copies nothing")
    mapping = edge.mapping or {entity.key: entity.key}
    if next(iter(mapping)) != entity.key:
        raise ValueError(f"{at}.mapping: the first field mapped must be the key {entity.key!r}")
    known = {entity.key, *entity.fields}
    for source in mapping:
        if source not in known:
            raise ValueError(f"{at}.mapping.{source}: {edge.entity} has no such field")
    columns = set(mapping.values()) if edge.mapping else known
    for column in edge.editable:
        if column not in columns:
            raise ValueError(f"{at}.editable: {column!r} is not a copied column")
    for name in [*edge.scope.include, *edge.scope.exclude]:
        if name not in known:
            raise ValueError(f"{at}.scope.{name}: {edge.entity} has no such field")


class LineFileError(ValueError):
    """A line file that cannot be read or run: the message names the file and the field."""


def read_spec(path: Path) -> LineSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise LineFileError(f"{path}: {error}") from error
    try:
        return LineSpec.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_problem(problem) for problem in error.errors())
        raise LineFileError(f"{path}: {problems}") from error


def _problem(problem: ErrorDetails) -> str:
    """`entities.0.key: Field required`; a check across fields names its own field."""
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "value_error":
        message = str(problem.get("ctx", {}).get("error", problem["msg"]))
    else:
        message = problem["msg"]
    return f"{where}: {message}" if where else message


def schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **LineSpec.model_json_schema(),
    }
