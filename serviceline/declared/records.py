"""Records of a declared entity, made up deterministically: what the seed and the workload write."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from serviceline.declared.spec import EntitySpec

WORDS = (
    "amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbour", "iris", "juniper",
    "kestrel", "linden", "maple", "north", "opal", "pine", "quartz", "river", "sable", "thorn",
)  # fmt: skip
FIRST_DAY = date(2020, 1, 1)


def key_of(entity: EntitySpec, number: int) -> str:
    return f"{entity.name[:3].upper()}{number:06d}"


def value(rng: random.Random, kind: type, field: str) -> Any:
    """A value of the field's type, as JSON carries it."""
    if kind is bool:
        return rng.random() < 0.5
    if kind is int:
        return rng.randint(0, 1000)
    if kind is float:
        return round(rng.uniform(0, 1000), 2)
    if kind is date:
        return (FIRST_DAY + timedelta(days=rng.randint(0, 3650))).isoformat()
    if kind is datetime:
        moment = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 5_000_000))
        return moment.isoformat()
    return f"{rng.choice(WORDS).title()} {field.replace('_', ' ')} {rng.randint(1, 999)}"


def new_record(entity: EntitySpec, rng: random.Random, number: int) -> dict[str, Any]:
    record: dict[str, Any] = {entity.key: key_of(entity, number)}
    for field in entity.fields:
        kind, optional = entity.type_of(field)
        record[field] = None if optional and rng.random() < 0.1 else value(rng, kind, field)
    return record


def change(entity: EntitySpec, rng: random.Random) -> dict[str, Any]:
    """A PATCH of one field: what an owner's user changes in a record."""
    field = rng.choice(sorted(entity.fields))
    return {field: value(rng, entity.type_of(field)[0], field)}
