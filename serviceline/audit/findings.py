"""What an audit finds of each key: the drift classes, and the fields two services hold apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CLASSES = ("in_sync", "stale", "diverged", "orphaned", "missing", "conflicting")


@dataclass(frozen=True)
class Difference:
    field: str
    values: dict[str, Any]  # service name -> its value


@dataclass(frozen=True)
class KeyDrift:
    key: str
    drift: str
    differences: list[Difference] = field(default_factory=list)


@dataclass
class Comparison:
    """Two services' records of one entity, key by key, as a declared check compared them."""

    name: str
    entity: str
    services: list[str]
    counts: dict[str, int]
    keys: list[KeyDrift]


# values of these types that are equal have the same normal spelling, whatever it is
PLAIN = (str, int, type(None))


def alike(one: Any, other: Any) -> bool:
    """Whether two values spell the same once normal: text or whole numbers of one type that are
    equal are, without spelling them (most values a copy holds are its owner's own)."""
    if type(one) is type(other) and type(one) in PLAIN and one == other:
        return True
    return bool(normal(one) == normal(other))


def normal(value: Any) -> Any:
    """One spelling per value, so `"11"` from a CSV equals `11` from JSON and a time its offset."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return [normal(item) for item in value]
    if isinstance(value, dict):
        return {name: normal(item) for name, item in value.items()}
    text = str(value)
    if len(text) >= 19 and text[10:11] == "T":
        try:
            return datetime.fromisoformat(text).astimezone(UTC).isoformat()
        except ValueError:
            return text
    return text
