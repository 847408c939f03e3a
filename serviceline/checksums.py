"""Checksums of key ranges of an edge, the same on owner and consumer, and a bisecting audit.

The owner projects its records through the edge (reader's shape, scope, mapping) and the
consumer reads its copies onto the same columns, so equal ranges give equal checksums. Keys
compare as strings and a range is [start, end); None leaves that side open.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from typing import Any

import httpx
from pydantic_core import to_jsonable_python
from sqlalchemy import ColumnElement, String, cast
from sqlmodel import Session, col, select

from serviceline.copier import Copy
from serviceline.feed import Owned
from serviceline.topology import Edge

Row = dict[str, Any]
MASK = (1 << 64) - 1
STREAM = 2000


class UnsupportedEdgeError(ValueError):
    """The owner cannot project this edge's records: its reader has no shape here."""


def canonical(value: Any) -> Any:
    """A value as both sides agree on it: numbers as text, since text sources carry them so."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return to_jsonable_python(value)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def canonical_row(row: Row) -> Row:
    return {name: canonical(value) for name, value in row.items()}


def row_hash(row: Row) -> int:
    text = json.dumps(canonical_row(row), sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass
class Bucket:
    start: str | None
    end: str | None
    count: int = 0
    total: int = 0  # sum of row hashes mod 2**64, so buckets compose by addition

    @property
    def checksum(self) -> str:
        return f"{self.total:016x}"

    def view(self) -> dict[str, Any]:
        return {"from": self.start, "to": self.end, "count": self.count, "checksum": self.checksum}


def quantiles(keys: Sequence[str], buckets: int) -> list[str]:
    """Split points putting about as many of the sorted `keys` in each bucket."""
    points: list[str] = []
    if not keys:
        return points
    for i in range(1, buckets):
        point = keys[i * len(keys) // buckets]
        if (not points or point > points[-1]) and point > keys[0]:
            points.append(point)
    return points


def summarise(
    rows: Iterator[tuple[str, Row]], start: str | None, end: str | None, splits: Sequence[str]
) -> list[Bucket]:
    """Count and checksum the key-ordered `rows` of [start, end) in the buckets `splits` cut."""
    bounds = [start, *splits, end]
    buckets = [Bucket(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    index = 0
    for key, row in rows:
        while buckets[index].end is not None and key >= str(buckets[index].end):
            index += 1
        buckets[index].count += 1
        buckets[index].total = (buckets[index].total + row_hash(row)) & MASK
    return buckets


def _in_range(key: ColumnElement[Any], start: str | None, end: str | None) -> list[Any]:
    conditions = []
    if start is not None:
        conditions.append(key >= start)
    if end is not None:
        conditions.append(key < end)
    return conditions


def _text_key(session: Session, column: Any) -> ColumnElement[Any]:
    # byte order, as Python orders str: Postgres would otherwise sort by the locale
    key = cast(column, String)
    return key.collate("C") if session.get_bind().dialect.name == "postgresql" else key


@dataclass
class OwnerSide:
    """An owner's records of one edge, projected onto the consumer's columns."""

    edge: Edge
    model: type[Owned]

    def __post_init__(self) -> None:
        if self.edge.reader not in self.model.readable_as:
            readable = ", ".join(sorted(self.model.readable_as))
            raise UnsupportedEdgeError(
                f"{self.edge.name} reads through {self.edge.reader.value}, which "
                f"{self.edge.owner} cannot project for checksums; it can: {readable}"
            )

    def _key(self, session: Session) -> ColumnElement[Any]:
        return _text_key(session, getattr(self.model, self.model.key_field))

    def keys(self, session: Session, start: str | None, end: str | None) -> list[str]:
        key = self._key(session)
        query = select(key).where(*_in_range(key, start, end)).order_by(key)
        return [str(k) for k in session.exec(query)]

    def rows(
        self, session: Session, start: str | None, end: str | None
    ) -> Iterator[tuple[str, Row]]:
        key = self._key(session)
        query = select(self.model).where(*_in_range(key, start, end)).order_by(key)
        for record in session.exec(query.execution_options(yield_per=STREAM)):
            fields = record.as_read_by(self.edge.reader)
            if self.edge.scope.admits(fields):
                yield record.key, self.edge.translate(fields)
            session.expunge(record)


@dataclass
class ConsumerSide:
    """A consumer's live copies of one edge (not those its owner deleted but it still uses)."""

    edge: Edge
    model: type[Copy]

    def _key(self, session: Session) -> ColumnElement[Any]:
        return _text_key(session, getattr(self.model, self.edge.key_field))

    def keys(self, session: Session, start: str | None, end: str | None) -> list[str]:
        key = self._key(session)
        live = col(self.model.source_deleted_at).is_(None)
        query = select(key).where(live, *_in_range(key, start, end)).order_by(key)
        return [str(k) for k in session.exec(query)]

    def rows(
        self, session: Session, start: str | None, end: str | None
    ) -> Iterator[tuple[str, Row]]:
        key = self._key(session)
        names = list(self.edge.mapping.values())
        columns = [getattr(self.model, name) for name in names]
        live = col(self.model.source_deleted_at).is_(None)
        query = select(*columns).where(live, *_in_range(key, start, end)).order_by(key)
        for values in session.exec(query.execution_options(yield_per=STREAM)):
            row = dict(zip(names, values, strict=True))
            yield str(row[self.edge.key_field]), row


Side = OwnerSide | ConsumerSide


def checksums(
    side: Side,
    session: Session,
    start: str | None,
    end: str | None,
    buckets: int,
    splits: Sequence[str] | None = None,
) -> list[Bucket]:
    """Buckets of [start, end): cut at `splits`, or at quantiles of this side's keys."""
    if splits is None:
        splits = quantiles(side.keys(session, start, end), buckets) if buckets > 1 else []
    return summarise(side.rows(session, start, end), start, end, splits)


def range_rows(
    side: Side, session: Session, start: str | None, end: str | None, limit: int
) -> list[Row]:
    """The canonical rows of [start, end), no more than `limit` of them."""
    rows = islice(side.rows(session, start, end), limit)
    return [canonical_row(row) for _, row in rows]


@dataclass
class DiffResult:
    """What differs between owner and consumer, key by key."""

    edge: str
    # in the owner's records but not the consumer's copies
    missing: dict[str, Row] = field(default_factory=dict)
    # in the consumer's copies but not (or no longer) among the owner's records
    extra: dict[str, Row] = field(default_factory=dict)
    # field -> (owner's value, consumer's value)
    changed: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    requests: int = 0
    bytes: int = 0
    rows_fetched: int = 0

    @property
    def keys(self) -> set[str]:
        return set(self.missing) | set(self.extra) | set(self.changed)


def diff_rows(edge: Edge, owner: Sequence[Row], consumer: Sequence[Row], into: DiffResult) -> None:
    """Add the differences of two sides' canonical rows of the same range to `into`."""
    key = edge.key_field
    theirs = {str(row[key]): row for row in consumer}
    for row in owner:
        copy = theirs.pop(str(row[key]), None)
        if copy is None:
            into.missing[str(row[key])] = row
            continue
        fields = {
            name: (value, copy.get(name)) for name, value in row.items() if copy.get(name) != value
        }
        if fields:
            into.changed[str(row[key])] = fields
    into.extra.update(theirs)


async def bisect(
    owner: httpx.AsyncClient,
    consumer: httpx.AsyncClient,
    edge: Edge,
    *,
    buckets: int = 16,
    threshold: int = 200,
) -> DiffResult:
    """Compare range checksums, narrowing into differing ranges until both sides are small."""
    audit = _Audit(owner, consumer, edge, DiffResult(edge.name))
    await audit.range(None, None, splitter="records", buckets=buckets, threshold=threshold)
    return audit.result


@dataclass
class _Audit:
    owner: httpx.AsyncClient
    consumer: httpx.AsyncClient
    edge: Edge
    result: DiffResult

    async def _get(self, side: str, path: str, params: dict[str, Any]) -> Any:
        client = self.owner if side == "records" else self.consumer
        url = f"/checksums/{side}/{self.edge.name}{path}"
        query = {name: value for name, value in params.items() if value is not None}
        response = await client.get(url, params=query)
        response.raise_for_status()
        self.result.requests += 1
        self.result.bytes += len(response.content)
        return response.json()

    async def range(
        self, start: str | None, end: str | None, *, splitter: str, buckets: int, threshold: int
    ) -> None:
        """Ask `splitter` to cut [start, end) by its keys, the other side to use the same cuts."""
        other = "copies" if splitter == "records" else "records"
        span = {"from": start, "to": end}
        cut = (await self._get(splitter, "", {**span, "buckets": buckets}))["buckets"]
        splits = [bucket["from"] for bucket in cut[1:]]
        matched = (await self._get(other, "", {**span, "split": splits, "buckets": 1}))["buckets"]
        for mine, theirs in zip(cut, matched, strict=True):
            if (mine["count"], mine["checksum"]) == (theirs["count"], theirs["checksum"]):
                continue
            counts = {splitter: mine["count"], other: theirs["count"]}
            bucket_span = (mine["from"], mine["to"])
            if max(counts.values()) <= threshold:
                await self.rows(*bucket_span)
                continue
            # a side cuts into smaller ranges unless it holds a single key: then the other can
            larger = other if len(cut) == 1 else max(counts, key=lambda side: counts[side])
            await self.range(*bucket_span, splitter=larger, buckets=buckets, threshold=threshold)

    async def rows(self, start: str | None, end: str | None) -> None:
        span = {"from": start, "to": end}
        mine = (await self._get("records", "/rows", span))["rows"]
        theirs = (await self._get("copies", "/rows", span))["rows"]
        self.result.rows_fetched += len(mine) + len(theirs)
        diff_rows(self.edge, mine, theirs, self.result)
