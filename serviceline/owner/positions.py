"""Page N of an owned table by page number at the cost of one page: positions kept in memory.

A listing paged by number (`ORDER BY updated_at, key OFFSET … LIMIT …`) makes the database step
over every earlier row for every page, so reading a whole table grows with its square. Here each
process keeps where every record stands in that order, refreshed from the change log before each
read, so a page is a slice of the order and a fetch of its rows by key: the very rows OFFSET
would give at that moment, a record edited mid-read moving between pages as it would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from weakref import WeakKeyDictionary

from sortedcontainers import SortedList
from sqlalchemy import Engine, null
from sqlmodel import Session, col, select

from serviceline.owner.feed import ChangeLog, Owned, head, pruned_through
from serviceline.runtime.db import IN_CHUNK, in_chunks, readonly

Row = TypeVar("Row", bound=Owned)
# where a record stands: whether it has a time (a record without one sorts first), the time, the key
Place = tuple[bool, datetime, str]
NO_TIME = datetime.min.replace(tzinfo=UTC)


class Behind:
    """A session whose snapshot is older than the positions: they cannot be read in it."""


BEHIND = Behind()


def listing_order(model: type[Owned], dialect: str) -> list[Any]:
    """The ORDER BY that positions follow: updated_at, no time first, then the key byte by byte."""
    key = col(getattr(model, model.key_field))
    # byte order on PostgreSQL too, whatever the database's collation
    return [
        col(model.updated_at).nulls_first(),
        key.collate("C") if dialect == "postgresql" else key,
    ]


class Positions(Generic[Row]):
    """Where each record of `model` stands in listing order, and within its `partition` value."""

    def __init__(self, model: type[Row], partition: str | None = None) -> None:
        self.model = model
        self.partition = partition
        self._lock = threading.Lock()
        # the last change log seq the positions include: they are the table as of that seq
        self._cursor: int | None = None
        self._places: dict[str, tuple[Place, Any]] = {}
        self._order: SortedList[Place] = SortedList()
        self._parts: dict[Any, SortedList[Place]] = {}

    def page(
        self,
        engine: Engine,
        start: int,
        count: int,
        *,
        updated_since: datetime | None = None,
        part: Any = None,
        session: Session | None = None,
    ) -> tuple[int, list[Row]] | None:
        """How many records the listing holds, and `count` of them from position `start`.

        `updated_since` keeps those changed after it; `part` those whose partition field equals
        it. A read-only `session` on SQLite, whose transaction is a snapshot, is read in when it
        is no older than the positions; otherwise a snapshot of its own is. None when the rows
        do not match the positions (a write the change log missed).
        """
        if session is not None and session.get_bind().dialect.name == "sqlite":
            found = self._page(session, start, count, updated_since, part, behind_ok=False)
            if not isinstance(found, Behind):
                return found
        with _snapshot(engine) as own:
            found = self._page(own, start, count, updated_since, part)
            # begun under the lock, the snapshot is as new as the positions or newer
            assert not isinstance(found, Behind)
            return found

    def _page(
        self,
        session: Session,
        start: int,
        count: int,
        updated_since: datetime | None,
        part: Any,
        *,
        behind_ok: bool = True,
    ) -> tuple[int, list[Row]] | Behind | None:
        with self._lock:
            if not behind_ok and self._cursor is not None and head(session) < self._cursor:
                return BEHIND
            self._catch_up(session)
            order = self._order
            if self.partition is not None and part is not None:
                order = self._parts.get(part, SortedList())
            first = 0
            if updated_since is not None:
                # the first record changed strictly after it: times are kept to the microsecond
                after = updated_since.astimezone(UTC) + timedelta(microseconds=1)
                first = order.bisect_left((True, after, ""))
            total = len(order) - first
            places = list(order.islice(first + start, first + start + count))
        rows = self._rows(session, places)
        if rows is None:
            with self._lock:
                self._cursor = None  # relist on the next read
            return None
        return total, rows

    def _rows(self, session: Session, places: list[Place]) -> list[Row] | None:
        """The records at these places, or None if one is gone or stands elsewhere."""
        key = col(getattr(self.model, self.model.key_field))
        keys = [place[2] for place in places]
        found = {row.key: row for row in session.exec(select(self.model).where(key.in_(keys)))}
        rows = []
        for place in places:
            row = found.get(place[2])
            if row is None or _place(row.key, row.updated_at) != place:
                return None
            rows.append(row)
        return rows

    def _catch_up(self, session: Session) -> None:
        top, cursor = head(session), self._cursor
        # a catch-up cut short leaves half-moved positions: the next read relists
        self._cursor = None
        if cursor is None or pruned_through(session) > cursor:
            self._relist(session)
        elif top > cursor:
            changed = set(
                session.exec(
                    select(ChangeLog.key).where(
                        ChangeLog.entity == self.model.entity,
                        col(ChangeLog.seq) > cursor,
                        col(ChangeLog.seq) <= top,
                    )
                )
            )
            if len(changed) > len(self._places) // 2 + IN_CHUNK:
                self._relist(session)
            else:
                self._refresh(session, changed)
        self._cursor = top

    def _relist(self, session: Session) -> None:
        self._places = {
            str(key): (_place(str(key), updated_at), part)
            for key, updated_at, part in session.execute(self._standing())
        }
        self._order = SortedList(place for place, _ in self._places.values())
        parts: dict[Any, list[Place]] = {}
        if self.partition is not None:
            for place, part in self._places.values():
                parts.setdefault(part, []).append(place)
        self._parts = {part: SortedList(places) for part, places in parts.items()}

    def _refresh(self, session: Session, keys: set[str]) -> None:
        key = col(getattr(self.model, self.model.key_field))
        for chunk in in_chunks(sorted(keys)):
            standing = session.execute(self._standing().where(key.in_(chunk)))
            present = set()
            for found, updated_at, part in standing:
                present.add(str(found))
                self._put(str(found), updated_at, part)
            for gone in set(chunk) - present:
                self._drop(gone)

    def _standing(self) -> Any:
        """Each record's key, time and partition value: all it needs to know where one stands."""
        model = self.model
        part = col(getattr(model, self.partition)) if self.partition else null()
        return select(col(getattr(model, model.key_field)), col(model.updated_at), part)

    def _put(self, key: str, updated_at: datetime | None, part: Any) -> None:
        self._drop(key)
        place = _place(key, updated_at)
        self._places[key] = (place, part)
        self._order.add(place)
        if self.partition is not None:
            self._parts.setdefault(part, SortedList()).add(place)

    def _drop(self, key: str) -> None:
        known = self._places.pop(key, None)
        if known is None:
            return
        place, part = known
        self._order.remove(place)
        if self.partition is not None:
            within = self._parts[part]
            within.remove(place)
            if not within:
                del self._parts[part]


def _place(key: str, updated_at: datetime | None) -> Place:
    return (updated_at is not None, updated_at or NO_TIME, key)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only session whose every statement sees the database as of its first."""
    # SQLite's read transaction is a snapshot already; PostgreSQL's needs repeatable read
    isolation = (
        {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    )
    with (
        readonly(engine).connect() as connection,
        Session(connection.execution_options(**isolation)) as session,
    ):
        yield session


_KEPT: WeakKeyDictionary[Engine, dict[tuple[type[Owned], str | None], Positions[Any]]] = (
    WeakKeyDictionary()
)
_KEPT_LOCK = threading.Lock()


def positions_for(engine: Engine, model: type[Row], partition: str | None = None) -> Positions[Row]:
    """The positions of `model`'s records in `engine`'s database, kept for as long as it is."""
    with _KEPT_LOCK:
        kept = _KEPT.setdefault(engine, {})
        found = kept.get((model, partition))
        if found is None:
            found = kept[(model, partition)] = Positions(model, partition)
        return found
