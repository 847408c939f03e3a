"""Checksums of key ranges of an edge, the same on owner and consumer, and a bisecting audit.

The owner projects its records through the edge (reader's shape, scope, mapping) and the
consumer reads its copies onto the same columns, so equal ranges give equal checksums. Keys
compare as strings and a range is [start, end); None leaves that side open.

Each side keeps the hash of every row with the stamp the row carried then (a number it is given
anew on every write, however written): a checksum hashes again only the rows of its range
written since, and counts, cuts and sums the rest in SQL.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import partial
from itertools import islice
from typing import Any, ClassVar, TypeVar

import anyio
import httpx
from pydantic_core import to_jsonable_python
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Engine,
    Select,
    String,
    UniqueConstraint,
    and_,
    bindparam,
    cast,
    func,
    inspect,
    literal_column,
    or_,
    text,
    true,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, delete, select

from serviceline.consumer.tables import Copy
from serviceline.model.topology import Edge
from serviceline.owner.feed import Owned
from serviceline.runtime.db import upsert

Row = dict[str, Any]
MASK = (1 << 64) - 1
HALF = 32
LOW = (1 << HALF) - 1
STREAM = 2000
BATCH = 5000
# a range of no more rows than this is cut and summed here, a larger one in the database:
# SQLite runs a statement of many small sums about as fast as their rows can be read out of
# it; Postgres plans each of its parts anew, and reads rows out faster
IN_MEMORY = {"sqlite": 2_000, "postgresql": 10_000}
# the most buckets one checksum request is cut into
MOST_BUCKETS = 256
# made anew when canonical() or row_hash() change, so no hash made the old way is kept
HASHING = 2
# byte order, as Python orders str: Postgres would otherwise sort by the locale
BYTEWISE = "C"


class UnsupportedEdgeError(ValueError):
    """The owner cannot project this edge's records: its reader has no shape here."""


class HashedSide(SQLModel, table=True):
    """One side of an edge whose row hashes this service keeps, and what they were made by."""

    __tablename__ = "kernel_hashed_side"
    __table_args__ = (UniqueConstraint("side", "edge"),)
    id: int | None = Field(default=None, primary_key=True)
    side: str
    edge: str
    projection: str


class RowHash(SQLModel, table=True):
    """A row's hash, current while the row still carries `stamp`."""

    __tablename__ = "kernel_row_hash"
    __table_args__ = {"sqlite_with_rowid": False}
    side_id: int = Field(primary_key=True)
    key: str = Field(
        primary_key=True, sa_type=String().with_variant(String(collation=BYTEWISE), "postgresql")
    )
    stamp: int = Field(sa_type=BigInteger)
    # an owner keeps the stamps of its records outside the edge's scope too, uncounted
    counted: bool
    # the hash's 32-bit halves, summed apart so that no sum overflows SQLite's 64-bit integers
    high: int = Field(sa_type=BigInteger)
    low: int = Field(sa_type=BigInteger)


def canonical(value: Any) -> Any:
    """A value as both sides agree on it: numbers as text, since text sources carry them so."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return to_jsonable_python(value)
    if isinstance(value, dict):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(value)


def canonical_row(row: Row) -> Row:
    return {name: canonical(row[name]) for name in sorted(row)}


def row_hash(row: Row) -> int:
    # keys come sorted, and dumps given no options reuses one encoder rather than making one
    text = json.dumps(canonical_row(row))
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


def quantiles(keys: Sequence[str]) -> list[str]:
    """Split points from sorted keys, the first and every nth after it: each after the first
    key and the last point, so no bucket is empty."""
    points: list[str] = []
    for point in keys[1:]:
        if point > keys[0] and (not points or point > points[-1]):
            points.append(point)
    return points


def _within(
    key: Any, low: str | None, high: str | None, *, after: bool = False
) -> list[ColumnElement[bool]]:
    """`key` from the parameter named `low` (or after it) and before the one named `high`."""
    conditions = []
    if low is not None:
        conditions.append(key > bindparam(low) if after else key >= bindparam(low))
    if high is not None:
        conditions.append(key < bindparam(high))
    return conditions


@dataclass(frozen=True)
class Span:
    """A range [start, end), or the part of it after `after`, as statements take it."""

    start: str | None
    end: str | None
    after: str | None = None

    @property
    def low(self) -> str | None:
        if self.after is not None:
            return "after"
        return None if self.start is None else "start"

    @property
    def high(self) -> str | None:
        return None if self.end is None else "end"

    @property
    def shape(self) -> tuple[str | None, str | None]:
        return self.low, self.high

    def conditions(self, key: Any) -> list[ColumnElement[bool]]:
        return _within(key, self.low, self.high, after=self.after is not None)

    def params(self) -> dict[str, Any]:
        given = {"start": self.start, "end": self.end, "after": self.after}
        return {name: value for name, value in given.items() if name in self.shape}


Built = TypeVar("Built")
_BUILT: dict[tuple[Any, ...], Any] = {}


def _built(shape: tuple[Any, ...], build: Callable[[], Built]) -> Built:
    """What `build` makes for `shape`, made once: making a statement takes longer than running
    it, so each is made with its values as parameters, and kept."""
    if shape not in _BUILT:
        _BUILT[shape] = build()
    built: Built = _BUILT[shape]
    return built


def _is_text(column: Any) -> bool:
    """Whether a column holds text already: a cast would keep its index from being used."""
    kind = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    return isinstance(kind, String)


@dataclass
class _Side:
    """The rows of one side of an edge, each with its stamp and the columns that are hashed."""

    edge: Edge
    model: type[Owned] | type[Copy]
    name: ClassVar[str]

    @property
    def key_name(self) -> str:
        raise NotImplementedError

    @property
    def key_column(self) -> Any:
        return self.model.__table__.c[self.key_name]  # type: ignore[union-attr]

    @property
    def stamp(self) -> Any:
        return self.model.__table__.c.stamp  # type: ignore[union-attr]

    @property
    def live(self) -> list[ColumnElement[bool]]:
        return []

    @property
    def shape(self) -> tuple[Any, ...]:
        """What this side's statements are made of, besides the dialect and the bounds."""
        return type(self), self.model, self.key_name, tuple(self.edge.mapping.values())

    def _with_row(self, query: Select[Any]) -> Select[Any]:
        raise NotImplementedError

    def _projected(self, result: Iterator[Any]) -> Iterator[tuple[str, int, Row | None]]:
        raise NotImplementedError

    def key(self, dialect: str) -> ColumnElement[Any]:
        """The key as text, in byte order, as an index holds it where one can."""
        column = self.key_column
        key = column if _is_text(column) else cast(column, String)
        return key.collate(BYTEWISE) if dialect == "postgresql" else key

    def projection(self) -> str:
        """What this side's kept hashes are made by: when it changes they are all made again."""
        edge = self.edge
        described = [
            HASHING,
            self.name,
            self.key_column.table.name,
            sorted(self.key_column.table.columns.keys()),
            edge.reader.name,
            list(edge.mapping.items()),
            {name: sorted(values) for name, values in edge.scope.include.items()},
            {name: sorted(values) for name, values in edge.scope.exclude.items()},
            {name: sorted(map(repr, values.items())) for name, values in edge.value_maps.items()},
        ]
        text = json.dumps(described, sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def keys(self, dialect: str, span: Span) -> Select[Any]:
        key = self.key(dialect)
        return select(key).where(*self.live, *span.conditions(key))

    def tallies(self, dialect: str, span: Span) -> Select[Any]:
        """The range's rows and the hashes kept for it (side :side_id), each as their count and
        the sums of their stamps' 32-bit halves: all alike only if no row was written since."""

        def build() -> Select[Any]:
            key = self.key(dialect)
            present = select(*_tally(self.stamp)).where(*self.live, *span.conditions(key))
            held = select(*_tally(RowHash.stamp)).where(
                col(RowHash.side_id) == bindparam("side_id"), *span.conditions(RowHash.key)
            )
            rows, hashes = present.subquery(), held.subquery()
            # a row each: joined on nothing
            statement: Select[Any] = select(*rows.c, *hashes.c).select_from(
                rows.join(hashes, true())
            )
            return statement

        return _built((self.shape, "tallies", dialect, span.shape), build)

    def projected(
        self,
        session: Session,
        span: Span,
        *,
        stale_for: int | None = None,
        limit: int | None = None,
    ) -> Iterator[tuple[str, int, Row | None]]:
        """(key, stamp, row) in key order, row None out of scope; only those with no current
        hash kept for side `stale_for`, if given."""
        dialect = session.get_bind().dialect.name
        stale, limited = stale_for is not None, limit is not None

        def build() -> Select[Any]:
            key = self.key(dialect)
            query = select(key, self.stamp).where(*self.live, *span.conditions(key))
            if stale:
                kept = and_(col(RowHash.side_id) == bindparam("side_id"), col(RowHash.key) == key)
                query = query.outerjoin(RowHash, kept).where(
                    or_(col(RowHash.key).is_(None), RowHash.stamp != self.stamp)
                )
            query = query.order_by(key).limit(bindparam("limit") if limited else None)
            return self._with_row(query).execution_options(yield_per=STREAM)

        statement = _built((self.shape, "rows", dialect, span.shape, stale, limited), build)
        params = {**span.params(), "side_id": stale_for, "limit": limit}
        return self._projected(iter(session.execute(statement, params)))

    def rows(self, session: Session, span: Span) -> Iterator[tuple[str, Row]]:
        for key, _, row in self.projected(session, span):
            if row is not None:
                yield key, row


@dataclass
class OwnerSide(_Side):
    """An owner's records of one edge, projected onto the consumer's columns."""

    model: type[Owned]
    name: ClassVar[str] = "records"

    def __post_init__(self) -> None:
        if self.edge.reader not in self.model.readable_as:
            readable = ", ".join(sorted(reader.name for reader in self.model.readable_as))
            raise UnsupportedEdgeError(
                f"{self.edge.name} reads through {self.edge.reader.name}, which "
                f"{self.edge.owner} cannot project for checksums; it can: {readable}"
            )

    @property
    def key_name(self) -> str:
        return self.model.key_field

    @property
    def columns(self) -> list[str]:
        return [column.key for column in inspect(self.model).column_attrs]

    def _with_row(self, query: Select[Any]) -> Select[Any]:
        return query.add_columns(*(getattr(self.model, name) for name in self.columns))

    def _projected(self, result: Iterator[Any]) -> Iterator[tuple[str, int, Row | None]]:
        columns = self.columns
        for key, stamp, *values in result:
            # made from the row's values, not loaded by the ORM: several times as fast, and
            # nothing for the session to keep
            record = self.model.model_construct(**dict(zip(columns, values, strict=True)))
            fields = record.as_read_by(self.edge.reader)
            admitted = self.edge.scope.admits(fields)
            yield str(key), stamp, self.edge.translate(fields) if admitted else None


@dataclass
class ConsumerSide(_Side):
    """A consumer's live copies of one edge (not those its owner deleted but it still uses)."""

    model: type[Copy]
    name: ClassVar[str] = "copies"

    @property
    def key_name(self) -> str:
        return self.edge.key_field

    @property
    def live(self) -> list[ColumnElement[bool]]:
        return [col(self.model.source_deleted_at).is_(None)]

    def _with_row(self, query: Select[Any]) -> Select[Any]:
        return query.add_columns(
            *(getattr(self.model, name) for name in self.edge.mapping.values())
        )

    def _projected(self, result: Iterator[Any]) -> Iterator[tuple[str, int, Row | None]]:
        names = list(self.edge.mapping.values())
        for key, stamp, *values in result:
            yield str(key), stamp, dict(zip(names, values, strict=True))


Side = OwnerSide | ConsumerSide


def refresh(side: Side, session: Session, span: Span) -> tuple[int, int]:
    """Make the kept hashes of the range those of the rows there now: the side's id, and how
    many rows the range holds.

    Committed batch by batch, so that hashing a large table for the first time never holds
    SQLite's one write lock for long.
    """
    side_id = _hashed_side(session, side)
    dialect = session.get_bind().dialect.name
    params = {**span.params(), "side_id": side_id}
    tallies = side.tallies(dialect, span)
    present, held = _halves(session.execute(tallies, params).one())
    if present == held:
        return side_id, present[0]
    batch_span = span
    while True:
        batch = list(side.projected(session, batch_span, stale_for=side_id, limit=BATCH))
        if batch:
            hashes = [_row_hash(side_id, key, stamp, row) for key, stamp, row in batch]
            upsert(session, RowHash, hashes, ("side_id", "key"))
            session.commit()
        if len(batch) < BATCH:
            break
        batch_span = replace(span, after=batch[-1][0])
    if batch_span is not span and dialect == "postgresql":
        # many hashes made at once: until Postgres counts them it plans for the few it knew,
        # and reads the whole table for every cut
        session.execute(text(f"ANALYZE {RowHash.__tablename__}"))
        session.commit()
    present, held = _halves(session.execute(tallies, params).one())
    if held[0] > present[0]:  # every row has its hash now, so the rest are of rows gone
        kept = [col(RowHash.side_id) == side_id, *span.conditions(RowHash.key)]
        gone = col(RowHash.key).not_in(side.keys(dialect, span))
        session.execute(delete(RowHash).where(*kept, gone), params)
        session.commit()
    return side_id, present[0]


def _tally(stamp: Any) -> list[ColumnElement[Any]]:
    """How many stamps, and the sums of their high and low 32 bits (no sum overflows)."""
    # written into the SQL, so Postgres takes them as integers of any width the stamp's is
    high: ColumnElement[int] = literal_column(str(HALF))
    low: ColumnElement[int] = literal_column(str(LOW))
    return [func.count(), func.sum(stamp.op(">>")(high)), func.sum(stamp.op("&")(low))]


def _halves(tallies: Sequence[Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The rows' tally and the kept hashes', as numbers (sums of nothing are NULL)."""
    numbers = tuple(int(value or 0) for value in tallies)
    return numbers[:3], numbers[3:]


def _row_hash(side_id: int, key: str, stamp: int, row: Row | None) -> dict[str, Any]:
    value = 0 if row is None else row_hash(row)
    return {
        "side_id": side_id,
        "key": key,
        "stamp": stamp,
        "counted": row is not None,
        "high": value >> HALF,
        "low": value & LOW,
    }


_HASHED_SIDE = select(HashedSide).where(
    HashedSide.side == bindparam("side"), HashedSide.edge == bindparam("edge")
)


def _hashed_side(session: Session, side: Side) -> int:
    """The id this side's hashes are kept under, made for it if it has none, emptied if they
    were made some other way."""
    projection = side.projection()
    named = {"side": side.name, "edge": side.edge.name}
    found = session.exec(_HASHED_SIDE, params=named).first()
    if found is not None and found.projection == projection and found.id is not None:
        return found.id
    if found is None:
        _bytewise_index(session, side)
        found = HashedSide(side=side.name, edge=side.edge.name, projection=projection)
    else:
        session.exec(delete(RowHash).where(col(RowHash.side_id) == found.id))
        found.projection = projection
    session.add(found)
    try:
        session.commit()
    except IntegrityError:  # another request made it first
        session.rollback()
        found = session.exec(_HASHED_SIDE, params=named).one()
    assert found.id is not None
    return found.id


def _bytewise_index(session: Session, side: Side) -> None:
    """On Postgres, an index of the keys in byte order, so a range is read without a scan."""
    column = side.key_column
    dialect = session.get_bind().dialect
    if dialect.name != "postgresql" or not _is_text(column):
        return
    quote = dialect.identifier_preparer.quote
    name = quote(f"ix_{column.table.name}_{column.name}_bytewise"[:63])
    table = dialect.identifier_preparer.format_table(column.table)
    session.execute(
        text(f'CREATE INDEX IF NOT EXISTS {name} ON {table} ({quote(column.name)} COLLATE "C")')
    )


def _counted(low: str | None, high: str | None) -> list[ColumnElement[bool]]:
    """The counted hashes kept for side :side_id, from parameter `low` and before `high`."""
    return [
        col(RowHash.side_id) == bindparam("side_id"),
        col(RowHash.counted).is_(True),
        *_within(RowHash.key, low, high),
    ]


def cuts(session: Session, side_id: int, span: Span, buckets: int) -> list[str]:
    """Keys cutting the counted rows of the range into `buckets` about as full: the first key
    and every nth after it, n the count over `buckets`."""
    params = {**span.params(), "side_id": side_id}

    def count() -> Select[Any]:
        return select(func.count()).select_from(RowHash).where(*_counted(*span.shape))

    counted = session.execute(_built(("count", span.shape), count), params).scalar_one()
    if not counted or buckets < 2:
        return []
    every = {"skip": _every(counted, buckets) - 1, "last": buckets - 1}
    statement = _built(("cuts", span.shape), partial(_every_nth, span))
    keys = session.execute(statement, {**params, **every}).scalars()
    return quantiles([key for key in keys if key is not None])


def _every(count: int, buckets: int) -> int:
    return max(1, count // buckets)


def _every_nth(span: Span) -> Select[Any]:
    """The first counted key of the range and every :skip + 1st after it, :last of them: each
    found from the one before, so the index is read once through, not once for each."""
    low, high = span.shape
    first = select(RowHash.key).where(*_counted(low, high)).order_by(RowHash.key).limit(1)
    found = select(literal_column("0").label("i"), first.scalar_subquery().label("key")).cte(
        "cut", recursive=True
    )
    then = (
        select(RowHash.key)
        .where(*_counted(None, high), col(RowHash.key) > found.c.key)
        .order_by(RowHash.key)
        .limit(1)
        .offset(bindparam("skip"))
    )
    following = select(found.c.i + 1, then.scalar_subquery()).where(
        found.c.i < bindparam("last"), found.c.key.is_not(None)
    )
    cuts = found.union_all(following)
    statement: Select[Any] = select(cuts.c.key)
    return statement


def sums(session: Session, side_id: int, span: Span, splits: Sequence[str]) -> list[Bucket]:
    """Count and checksum the counted rows of the range in the buckets `splits` cut."""
    buckets = _buckets(span, splits)
    # one statement for any number of buckets, not one for each number (each takes long to
    # make): the last bucket in its last part, the others in the first, the parts between
    # left empty (from "" to "", where "" is before every key)
    last = len(buckets) - 1
    places = {place: index for index, place in enumerate([*range(last), MOST_BUCKETS - 1])}
    params: dict[str, Any] = {"side_id": side_id, "end": span.end, **_NOWHERE}
    for place, index in places.items():
        params[_FROM[place]] = buckets[index].start or ""
        if index < last:
            params[_TO[place]] = buckets[index].end
    statement = _built(("sums", span.end is not None), partial(_sums, span.end is not None))
    for place, count, high, low in session.execute(statement, params).all():
        if place in places:
            bucket = buckets[places[place]]
            bucket.count = count
            bucket.total = ((int(high or 0) << HALF) + int(low or 0)) & MASK
    return buckets


def summed_here(
    session: Session, side_id: int, span: Span, buckets: int, splits: Sequence[str] | None
) -> list[Bucket]:
    """As cuts() and sums() make them, from the range's hashes read in one go: for a range
    small enough, quicker than cutting and summing in the database."""

    def hashes() -> Select[str, int, int]:
        ordered = select(RowHash.key, RowHash.high, RowHash.low).order_by(RowHash.key)
        return ordered.where(*_counted(*span.shape))

    params = {**span.params(), "side_id": side_id}
    found = session.execute(_built(("hashes", span.shape), hashes), params).all()
    if splits is None:
        keys = [key for key, _, _ in found]
        splits = quantiles(keys[:: _every(len(keys), buckets)][:buckets]) if buckets > 1 else []
    cut = _buckets(span, splits)
    for key, high, low in found:
        bucket = cut[bisect_right(splits, key)]
        bucket.count += 1
        bucket.total = (bucket.total + (high << HALF) + low) & MASK
    return cut


def _buckets(span: Span, splits: Sequence[str]) -> list[Bucket]:
    bounds = [span.start, *splits, span.end]
    return [Bucket(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


_FROM = [f"from{i}" for i in range(MOST_BUCKETS)]
_TO = [f"to{i}" for i in range(MOST_BUCKETS - 1)]
_NOWHERE = dict.fromkeys(_FROM + _TO, "")


def _sums(end: bool) -> CompoundSelect[Any]:
    """Count and sums of hash halves from each :from{i} to its :to{i}, the last to :end or on."""
    last = MOST_BUCKETS - 1
    return union_all(
        *(
            select(
                literal_column(str(i)),
                func.count(),
                func.sum(RowHash.high),
                func.sum(RowHash.low),
            ).where(*_counted(_FROM[i], _TO[i] if i < last else "end" if end else None))
            for i in range(MOST_BUCKETS)
        )
    )


def checksums(
    side: Side,
    engine: Engine,
    start: str | None,
    end: str | None,
    buckets: int,
    splits: Sequence[str] | None = None,
) -> list[Bucket]:
    """Buckets of [start, end): cut at `splits`, or at quantiles of this side's keys."""
    span = Span(start, end)
    with Session(engine) as session:
        side_id, rows = refresh(side, session, span)
        dialect = session.get_bind().dialect.name
        if rows <= IN_MEMORY.get(dialect, 0):
            return summed_here(session, side_id, span, buckets, splits)
        if dialect == "postgresql":
            # compiling a statement of hundreds of aggregates takes Postgres seconds; running
            # it, milliseconds
            session.execute(text("SET LOCAL jit = off"))
        if splits is None:
            splits = cuts(session, side_id, span, buckets) if buckets > 1 else []
        return sums(session, side_id, span, splits)


def range_rows(
    side: Side, session: Session, start: str | None, end: str | None, limit: int
) -> list[Row]:
    """The canonical rows of [start, end), no more than `limit` of them."""
    rows = islice(side.rows(session, Span(start, end)), limit)
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
    buckets: int = 256,
    threshold: int = 200,
    leaf: int = 16,
    concurrency: int = 8,
) -> DiffResult:
    """Compare range checksums, narrowing into differing ranges until both sides are small.

    The whole range is cut into `buckets`, a differing range into one bucket for every `leaf`
    rows or so (no more than `buckets`): each cut costs two requests, so few cuts, and small
    ranges to compare row by row once they hold `threshold` rows or fewer. Up to `concurrency`
    requests are in flight at once.
    """
    if buckets < 2:
        raise ValueError("buckets: at least 2, or no range is ever cut smaller")
    limit = anyio.Semaphore(concurrency)
    audit = _Audit(owner, consumer, edge, DiffResult(edge.name), buckets, threshold, leaf, limit)
    await audit.range(None, None, splitter="records", buckets=buckets)
    return audit.result


@dataclass
class _Audit:
    owner: httpx.AsyncClient
    consumer: httpx.AsyncClient
    edge: Edge
    result: DiffResult
    most: int
    threshold: int
    leaf: int
    limit: anyio.Semaphore

    async def _get(self, side: str, path: str, params: dict[str, Any]) -> Any:
        client = self.owner if side == "records" else self.consumer
        url = f"/checksums/{side}/{self.edge.name}{path}"
        query = {name: value for name, value in params.items() if value is not None}
        async with self.limit:
            response = await client.get(url, params=query)
        response.raise_for_status()
        self.result.requests += 1
        self.result.bytes += len(response.content)
        return response.json()

    async def range(
        self, start: str | None, end: str | None, *, splitter: str, buckets: int
    ) -> None:
        """Ask `splitter` to cut [start, end) by its keys, the other side to use the same cuts."""
        other = "copies" if splitter == "records" else "records"
        span = {"from": start, "to": end}
        cut = (await self._get(splitter, "", {**span, "buckets": buckets}))["buckets"]
        splits = [bucket["from"] for bucket in cut[1:]]
        matched = (await self._get(other, "", {**span, "split": splits, "buckets": 1}))["buckets"]
        async with anyio.create_task_group() as group:
            for mine, theirs in zip(cut, matched, strict=True):
                if (mine["count"], mine["checksum"]) == (theirs["count"], theirs["checksum"]):
                    continue
                counts = {splitter: mine["count"], other: theirs["count"]}
                most = max(counts.values())
                if most <= self.threshold:
                    group.start_soon(self.rows, mine["from"], mine["to"])
                    continue
                # a side cuts into smaller ranges unless it holds a single key: then the other can
                larger = other if len(cut) == 1 else max(counts, key=lambda side: counts[side])
                into = min(self.most, max(2, math.ceil(most / self.leaf)))
                group.start_soon(
                    partial(self.range, mine["from"], mine["to"], splitter=larger, buckets=into)
                )

    async def rows(self, start: str | None, end: str | None) -> None:
        span = {"from": start, "to": end}
        mine = (await self._get("records", "/rows", span))["rows"]
        theirs = (await self._get("copies", "/rows", span))["rows"]
        self.result.rows_fetched += len(mine) + len(theirs)
        diff_rows(self.edge, mine, theirs, self.result)
