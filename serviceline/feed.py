"""Owner side: versioned records, a change log written in the same transaction, and its feed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import event, func, text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlmodel import JSON, Field, Session, SQLModel, col, delete, select

from serviceline.clock import SimulatedClock
from serviceline.db import WRITERS_LOCK, read_state, stamp_field, utc_field, write_state
from serviceline.topology import Reader

PRUNED_THROUGH = "feed.pruned_through"


class Owned(SQLModel):
    """A record this service owns: its natural key is the primary key, every change is logged."""

    entity: ClassVar[str]
    key_field: ClassVar[str]

    version: int = Field(default=0)
    updated_at: datetime | None = utc_field(index=True)
    # new on every write of the row, so a checksum kept for it knows when it is out of date
    stamp: int | None = stamp_field()

    @property
    def key(self) -> str:
        return str(getattr(self, self.key_field))

    def feed_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    # the owner's public APIs that can show this record: what a consumer reading through one sees
    readable_as: ClassVar[frozenset[Reader]] = frozenset({Reader.KERNEL})

    def as_read_by(self, reader: Reader) -> dict[str, Any]:
        """This record as a consumer reading through `reader` receives it."""
        return self.feed_record()


class ChangeLog(SQLModel, table=True):
    """The transactional outbox: one row for every change to an owned record."""

    __tablename__ = "kernel_changelog"
    # without AUTOINCREMENT SQLite hands out the seqs of pruned rows again, behind every cursor
    __table_args__ = {"sqlite_autoincrement": True}
    seq: int | None = Field(default=None, primary_key=True)
    entity: str = Field(index=True)
    key: str = Field(index=True)
    op: str
    version: int
    changed_at: datetime | None = utc_field()
    record: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class FeedNotifier:
    """Wakes long-polling feed readers when a change commits in this process."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def changed(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._pulse)

    def _pulse(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def watch(self) -> asyncio.Event:
        """The event the next commit sets: take it before reading, so no commit slips between."""
        return self._event

    @staticmethod
    async def wait(event: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout=seconds)
        except TimeoutError:
            return


def attach(session: Session, clock: SimulatedClock, notifier: FeedNotifier | None) -> Session:
    """Give a session what the change log needs: the clock, and whom to wake on commit."""
    session.info["clock"] = clock
    session.info["notifier"] = notifier
    return session


@event.listens_for(OrmSession, "before_flush")
def _log_owned_changes(
    session: OrmSession, _context: UOWTransaction, _instances: Iterable[Any] | None
) -> None:
    clock = session.info.get("clock")
    if clock is None:
        return
    now = clock.now()
    created = [obj for obj in session.new if isinstance(obj, Owned)]
    changed = created + [
        obj for obj in session.dirty if isinstance(obj, Owned) and session.is_modified(obj)
    ]
    deleted = [obj for obj in session.deleted if isinstance(obj, Owned)]
    if not changed and not deleted:
        return
    if session.get_bind().dialect.name == "postgresql":
        # seq must follow commit order, so an owner's writers take turns (a session begun
        # read-only that writes after all takes its turn here)
        session.execute(text(f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})"))
    _carry_on_versions(session, created)
    for obj in changed:
        obj.version += 1
        obj.updated_at = now
        session.add(_entry(obj, "upsert", now, obj.feed_record()))
    for obj in deleted:
        obj.version += 1
        session.add(_entry(obj, "delete", now, None))
    session.info["feed_changed"] = True


def _carry_on_versions(session: OrmSession, created: list[Owned]) -> None:
    """A key deleted and created again goes on from its last logged version, not back to 1."""
    by_entity: dict[str, dict[str, Owned]] = defaultdict(dict)
    for obj in created:
        by_entity[obj.entity][obj.key] = obj
    for entity, objs in by_entity.items():
        keys = list(objs)
        for start in range(0, len(keys), 500):
            last = session.execute(
                select(ChangeLog.key, func.max(ChangeLog.version))
                .where(
                    ChangeLog.entity == entity, col(ChangeLog.key).in_(keys[start : start + 500])
                )
                .group_by(col(ChangeLog.key))
            )
            for key, version in last:
                objs[key].version = max(objs[key].version, version)


def _entry(obj: Owned, op: str, now: datetime, record: dict[str, Any] | None) -> ChangeLog:
    return ChangeLog(
        entity=obj.entity, key=obj.key, op=op, version=obj.version, changed_at=now, record=record
    )


@event.listens_for(OrmSession, "after_commit")
def _wake_readers(session: OrmSession) -> None:
    if session.info.pop("feed_changed", False) and session.info.get("notifier") is not None:
        session.info["notifier"].changed()


def head(session: Session) -> int:
    """The last seq handed out, even when pruning has emptied the log."""
    top = int(session.exec(select(func.coalesce(func.max(ChangeLog.seq), 0))).one() or 0)
    return max(top, pruned_through(session))


def pruned_through(session: Session) -> int:
    return int(read_state(session, PRUNED_THROUGH) or 0)


def changes_since(
    session: Session, entity: str, since: int, limit: int
) -> tuple[list[ChangeLog], int, bool]:
    """Changes to `entity` after `since`: the page, the cursor to resume from, whether more wait."""
    top = head(session)
    rows = list(
        session.exec(
            select(ChangeLog)
            .where(
                ChangeLog.entity == entity, col(ChangeLog.seq) > since, col(ChangeLog.seq) <= top
            )
            .order_by(col(ChangeLog.seq))
            .limit(limit + 1)
        )
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    cursor = rows[-1].seq if has_more and rows[-1].seq is not None else max(top, since)
    return rows, cursor, has_more


def prune(session: Session, keep: int) -> int:
    """Drop all but the newest `keep` changes; a cursor older than what is left gets 410."""
    cutoff = head(session) - keep
    if cutoff <= pruned_through(session):
        return 0
    result = session.exec(delete(ChangeLog).where(col(ChangeLog.seq) <= cutoff))
    write_state(session, PRUNED_THROUGH, str(cutoff))
    return int(result.rowcount)
