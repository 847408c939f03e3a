"""A declared line's tables, made from its file: each owner's records and each consumer's copies."""

from __future__ import annotations

import types
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, create_model
from sqlmodel import Field, SQLModel

from serviceline.consumer.tables import Copy
from serviceline.declared.spec import EdgeSpec, EntitySpec, LineSpec
from serviceline.owner.feed import Owned
from serviceline.runtime.db import UTCDateTime


def _column(kind: type, optional: bool, *, key: bool = False) -> tuple[Any, Any]:
    """A field's annotation and its SQLModel Field."""
    options: dict[str, Any] = {"primary_key": True} if key else {}
    if kind is datetime:
        options["sa_type"] = UTCDateTime
    if optional:
        return kind | None, Field(default=None, **options)
    return kind, Field(**options)


class TableTakenError(ValueError):
    pass


def _table(
    name: str, base: type[SQLModel], columns: dict[str, tuple[Any, Any]], **extra: Any
) -> Any:
    # tables share one registry in a process: another line's of the same name would be replaced
    if name in SQLModel.metadata.tables:
        raise TableTakenError(f"{name}: this process already has a table of that name")
    namespace: dict[str, Any] = {"__module__": __name__, **extra}
    annotations: dict[str, Any] = {k: ClassVar[str] for k in ("entity", "key_field") if k in extra}
    for column, (annotation, field) in columns.items():
        annotations[column] = annotation
        namespace[column] = field
    namespace["__annotations__"] = annotations
    return types.new_class(name, (base,), {"table": True}, lambda body: body.update(namespace))


def owned_table(entity: EntitySpec) -> type[Owned]:
    """The owner's table of an entity: its key and fields, each change logged in its feed."""
    columns = {entity.key: _column(str, False, key=True)}
    columns |= {field: _column(*entity.type_of(field)) for field in entity.fields}
    table: type[Owned] = _table(
        f"{entity.owner}_{entity.name}",
        Owned,
        columns,
        __tablename__=f"{entity.owner}_{entity.name}",
        entity=entity.name,
        key_field=entity.key,
    )
    return table


def copy_table(line: LineSpec, edge: EdgeSpec) -> type[Copy]:
    """A consumer's copies of one entity: the columns its edge maps, the key's first."""
    entity = line.entity(edge.entity)
    mapping = line.mapping(edge)
    key = next(iter(mapping))
    columns = {
        column: _column(str, False, key=True) if source == key else _column(*entity.type_of(source))
        for source, column in mapping.items()
    }
    table: type[Copy] = _table(
        f"{edge.consumer}_{edge.entity}",
        Copy,
        columns,
        __tablename__=f"{edge.consumer}_{edge.entity}",
    )
    return table


def write_bodies(entity: EntitySpec) -> tuple[type[BaseModel], type[BaseModel]]:
    """What the owner's API takes to create a record, and to change some of its fields."""
    strict = ConfigDict(extra="forbid")
    create_fields: dict[str, Any] = {entity.key: (str, ...)}
    update_fields: dict[str, Any] = {}
    for field in entity.fields:
        kind, optional = entity.type_of(field)
        create_fields[field] = (kind | None, None) if optional else (kind, ...)
        update_fields[field] = (kind | None, None)
    title = entity.name.title().replace("_", "")
    created = create_model(f"{title}Create", __config__=strict, **create_fields)
    updated = create_model(f"{title}Update", __config__=strict, **update_fields)
    return created, updated
