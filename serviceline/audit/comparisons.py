"""A topology's declared checks: two services' records read over their APIs, compared by key."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from serviceline.audit.findings import CLASSES, Comparison, Difference, KeyDrift, alike
from serviceline.consumer.known_walks import KnownRecords
from serviceline.model.topology import Listing, Lookup, Normal, RecordCheck, Side, lookup
from serviceline.runtime.upstream import UpstreamError


class Read(Protocol):
    """A GET of one service's path, its JSON answer; an error answer raises UpstreamError."""

    async def __call__(
        self, service: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class Held:
    """One record of a side: the key it is matched on, the name findings give it, its fields."""

    key: str
    name: str
    values: dict[str, Any]


async def listed(read: Read, listing: Listing, page_size: int) -> list[dict[str, Any]]:
    """Every record of a listing, a page at a time as the listing says it is paged."""
    items, key = listing.items, listing.after
    if items is None and key is None:
        whole: list[dict[str, Any]] = await read(listing.service, listing.path)
        return whole
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": page_size}
        if after is not None:
            params["after"] = after
        body = await read(listing.service, listing.path, params)
        if items is not None:
            rows += body[items]
            after = body["next_after"]
            if after is None:
                return rows
        elif key is not None:
            rows += body
            if len(body) < page_size:
                return rows
            after = rows[-1][key]


async def compare(
    check: RecordCheck,
    read: Read,
    page_size: int,
    fan_out: int,
    known: KnownRecords | None = None,
) -> Comparison:
    """Both sides read, the listed one first, and each key classed as the check says; a side
    looked up key by key takes `known`'s answers where they hold."""
    first, second = check.sides
    listed_first = isinstance(first.reading, Listing)
    leading, following = (first, second) if listed_first else (second, first)
    led = await _held(leading, read, page_size, fan_out, (), known)
    keys = sorted({h.key for h in led})
    followed = await _held(following, read, page_size, fan_out, keys, known)
    ones, others = (led, followed) if listed_first else (followed, led)
    if check.copied_from is None:
        return _co_created(check, ones, others)
    return _copied(check, ones, others)


async def _held(
    side: Side,
    read: Read,
    page_size: int,
    fan_out: int,
    keys: Sequence[str],
    known: KnownRecords | None,
) -> list[Held]:
    rows: list[tuple[str | None, dict[str, Any]]]
    if isinstance(side.reading, Listing):
        rows = [(None, row) for row in await listed(read, side.reading, page_size)]
    else:
        rows = await _looked_up(side.reading, read, fan_out, keys, known)
    return [
        _record(side, row, asked)
        for asked, row in rows
        if side.where is None or lookup(row, side.where)
    ]


async def _looked_up(
    reading: Lookup, read: Read, fan_out: int, keys: Sequence[str], known: KnownRecords | None
) -> list[tuple[str | None, dict[str, Any]]]:
    """Each of `keys` with its record, `fan_out` asked at once; a key the service lacks has none."""

    async def one(key: str) -> dict[str, Any] | None:
        if known is None:
            return await ask(key)
        record: dict[str, Any] | None = await known.asked(key, partial(ask, key))
        return record

    async def ask(key: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = await read(reading.service, reading.path.format(key=key))
        except UpstreamError as error:
            if error.status == 404:
                return None
            raise
        return record

    found: list[dict[str, Any] | None] = []
    for start in range(0, len(keys), fan_out):
        found += await asyncio.gather(*(one(key) for key in keys[start : start + fan_out]))
    return [(key, record) for key, record in zip(keys, found, strict=True) if record is not None]


def _record(side: Side, row: Mapping[str, Any], asked: str | None) -> Held:
    key = asked if asked is not None else ":".join(str(lookup(row, name)) for name in side.key)
    name = key if side.named_by is None else str(lookup(row, side.named_by))
    values = {
        field: _normalised(side.normalise.get(field), lookup(row, source))
        for field, source in side.fields.items()
    }
    return Held(key, name, values)


def _normalised(how: Normal | None, value: Any) -> Any:
    if how is Normal.FIRST_WORD:
        return (value or "").split(" ")[0]
    if how is Normal.SORTED and value is not None:
        return sorted(value)
    return value


def _differences(
    check: RecordCheck, one: Mapping[str, Any], other: Mapping[str, Any]
) -> list[Difference]:
    left, right = check.services
    return [
        Difference(name, {left: one.get(name), right: other.get(name)})
        for name in check.fields
        if not alike(one.get(name), other.get(name))
    ]


def _co_created(check: RecordCheck, ones: list[Held], others: list[Held]) -> Comparison:
    """Keys both services hold alike are in sync; held by one only, or differently, conflict."""
    left, right = check.services
    lefts = {held.key: held.values for held in ones}
    rights = {held.key: held.values for held in others}
    counts = dict.fromkeys(CLASSES, 0)
    keys: list[KeyDrift] = []
    for key in sorted(set(lefts) | set(rights)):
        one, other = lefts.get(key), rights.get(key)
        if one is None or other is None:
            differences = [Difference("held", {left: one is not None, right: other is not None})]
        else:
            differences = _differences(check, one, other)
        drift = KeyDrift(key, "conflicting" if differences else "in_sync", differences)
        counts[drift.drift] += 1
        if differences:
            keys.append(drift)
    return Comparison(check.name, check.entity, list(check.services), counts, keys)


def _copied(check: RecordCheck, ones: list[Held], others: list[Held]) -> Comparison:
    """Each copy beside the record it was copied from, in the copy's listing order."""
    copying_first = check.copied_from != check.sides[0].service
    copies, sources = (ones, others) if copying_first else (others, ones)
    copy = check.sides[0] if copying_first else check.sides[1]
    source = {held.key: held.values for held in sources}
    counts = dict.fromkeys(CLASSES, 0)
    keys: list[KeyDrift] = []
    for held in copies:
        found = source.get(held.key)
        if found is None:
            gone = Difference(":".join(copy.key), {str(check.copied_from): None})
            drift = KeyDrift(held.name, "orphaned", [gone])
        else:
            pair = (held.values, found) if copying_first else (found, held.values)
            differences = _differences(check, *pair)
            drift = KeyDrift(held.name, "diverged" if differences else "in_sync", differences)
        counts[drift.drift] += 1
        if drift.differences:
            keys.append(drift)
    return Comparison(check.name, check.entity, list(check.services), counts, keys)
