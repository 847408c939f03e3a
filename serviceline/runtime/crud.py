"""Finding and changing one record, as every service's handlers do: they flush, never commit."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel, select

from serviceline.runtime.db import in_chunks

Record = TypeVar("Record", bound=SQLModel)


def by_key(session: Session, model: type[Record], keys: Collection[str]) -> dict[str, Record]:
    """The rows of `model` with these primary keys: one query for each chunk of keys."""
    key = inspect(model).primary_key[0]
    found: dict[str, Record] = {}
    for chunk in in_chunks(list(set(keys))):
        found.update(session.exec(select(key, model).where(key.in_(chunk))).all())
    return found


def get_or_404(
    session: Session,
    model: type[Record],
    key: str,
    *,
    field: str,
    what: str,
    hint: str | None = None,
) -> Record:
    """The `model` stored under `key`, or a 404 that starts with the `field` the key came in."""
    record = session.get(model, key)
    if record is None:
        detail = f"{field}: no {what} {key!r}"
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{detail} ({hint})" if hint else detail)
    return record


class Changes(BaseModel):
    """A PATCH body: the fields it names change, and a field it does not know is refused."""

    model_config = ConfigDict(extra="forbid")


def update_from(
    session: Session,
    record: Record,
    changes: BaseModel,
    *,
    check: Callable[[Record], None] | None = None,
) -> Record:
    """Set the fields `changes` was given on `record`, and flush it once `check` accepts it."""
    values = changes.model_dump(exclude_unset=True)
    columns = type(record).__table__.columns  # type: ignore[attr-defined]
    for name, value in values.items():
        if value is None and name in columns and not columns[name].nullable:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"{name}: may be left out, but not set to null",
            )
    record.sqlmodel_update(values)
    # before the flush, so a refused change never reaches the database or the change log
    if check is not None:
        check(record)
    session.add(record)
    session.flush()
    return record
