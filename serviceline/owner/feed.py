"""Owner side: versioned records, a change log written in the same transaction, and its feed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import anyio
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import Index, Row, Text, cast, event, func, insert, text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import JSON, Field, Session, SQLModel, col, delete, select
from starlette.requests import Request

from serviceline.model.topology import KERNEL_READER, Reader
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import (
    WRITERS_LOCK,
    in_chunks,
    read_state,
    stamp_field,
    utc_field,
    write_state,
)
from serviceline.telemetry.tracing import current_traceparent

PRUNED_THROUGH = "feed.pruned_through"
R = TypeVar("R", bound=SQLModel)


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
    readable_as: ClassVar[frozenset[Reader]] = frozenset({KERNEL_READER})

    def as_read_by(self, reader: Reader) -> dict[str, Any]:
        """This record as a consumer reading through `reader` receives it."""
        return self.feed_record()


class ChangeLog(SQLModel, table=True):
    """The transactional outbox: one row for every change to an owned record."""

    __tablename__ = "kernel_changelog"
    # without AUTOINCREMENT SQLite hands out the seqs of pruned rows again, behind every cursor
    # (entity, key, version): a batch's version lookup reads its own keys, not the entity's history
    __table_args__ = (
        Index("ix_kernel_changelog_entity_key_version", "entity", "key", "version"),
        {"sqlite_autoincrement": True},
    )
    seq: int | None = Field(default=None, primary_key=True)
    entity: str = Field(index=True)
    key: str
    op: str
    version: int
    changed_at: datetime | None = utc_field()
    record: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # the W3C traceparent of the span that wrote it, while tracing is on
    # (serviceline.telemetry.tracing)
    traceparent: str | None = None


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

    @staticmethod
    async def wait_unless_gone(event: asyncio.Event, seconds: float, request: Request) -> bool:
        """Wait for the event or the timeout, as `wait`; False: the client hung up first."""
        gone = False

        async def hang_up(scope: anyio.CancelScope) -> None:
            nonlocal gone
            while (await request.receive())["type"] != "http.disconnect":
                continue
            gone = True
            scope.cancel()

        with anyio.move_on_after(seconds):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(hang_up, tasks.cancel_scope)
                await event.wait()
                tasks.cancel_scope.cancel()
        return not gone


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
    context = current_traceparent()
    for obj in changed:
        obj.version += 1
        obj.updated_at = now
        session.add(_entry(obj, "upsert", now, obj.feed_record(), context))
    for obj in deleted:
        obj.version += 1
        session.add(_entry(obj, "delete", now, None, context))
    session.info["feed_changed"] = True


def _carry_on_versions(session: OrmSession, created: list[Owned]) -> None:
    """A key deleted and created again goes on from its last logged version, not back to 1."""
    by_entity: dict[str, dict[str, Owned]] = defaultdict(dict)
    for obj in created:
        by_entity[obj.entity][obj.key] = obj
    for entity, objs in by_entity.items():
        for chunk in in_chunks(list(objs)):
            last = session.execute(
                select(ChangeLog.key, func.max(ChangeLog.version))
                .where(ChangeLog.entity == entity, col(ChangeLog.key).in_(chunk))
                .group_by(col(ChangeLog.key))
            )
            for key, version in last:
                objs[key].version = max(objs[key].version, version)


def new_record(
    model: type[R],
    body: BaseModel | Mapping[str, Any],
    update: Mapping[str, Any] | None = None,
    *,
    at: int | None = None,
) -> R:
    """`model.model_validate(body, update=update)` for a record to store, at an eighth of the cost.

    A table model's model_validate sets every field again through SQLAlchemy's instrumentation,
    an attribute event each: most of a batch endpoint's time. A new record's insert (add_new's,
    or the flush's) reads only the values in the instance's dict, so the same validator fills
    that dict of an instance the mapper made. A model validator may want a fully instrumented
    instance: it gets one the usual way. What the validator refuses is the client's fault: a 422
    naming the field, after the record's index in the batch when `at` is given.
    """
    values = {**(body.model_dump() if isinstance(body, BaseModel) else body), **(update or {})}
    try:
        if model.__pydantic_decorators__.model_validators:
            return model.model_validate(values)
        record: R = manager_of_class(model).new_instance()
        # the instance's SQLAlchemy state, which the validator's new dict would drop
        state = dict(record.__dict__)
        model.__pydantic_validator__.validate_python(values, self_instance=record)
        record.__dict__.update(state)
        return record
    except ValidationError as error:
        where = ("body",) if at is None else ("body", at)
        raise RequestValidationError(
            [{**problem, "loc": (*where, *problem["loc"])} for problem in error.errors()]
        ) from error


def add_new(session: Session, records: Sequence[SQLModel]) -> None:
    """Store new records of one model and log each, as adding them and flushing would.

    The same rows, versions, times and log entries in the same order as the session's flush
    writes them, by the database's own executemany rather than the unit of work object by
    object: the records logged first, then whatever else the session holds changed. With other
    new objects pending in the session (their order among these would decide the log's), or
    no clock, the session's flush stores them instead.
    """
    clock = session.info.get("clock")
    models = {type(obj) for obj in records}
    if not records or clock is None or session.new or len(models) != 1:
        session.add_all(records)
        session.flush()
        return
    model = models.pop()
    owned = [obj for obj in records if isinstance(obj, Owned)]
    if len(owned) != len(records):
        session.add_all(records)
        session.flush()
        return
    now = clock.now()
    context = current_traceparent()
    # what else the session holds changed waits, as in the flush: logged after these
    with session.no_autoflush:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text(f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})"))
        _carry_on_versions(session, owned)
    table = model.__table__  # type: ignore[attr-defined]
    # a column no record gives a value is left to its default (the stamp), as the flush leaves it
    columns = [
        c.name
        for c in table.columns
        if c.default is None or any(getattr(obj, c.name) is not None for obj in owned)
    ]
    rows, entries = [], []
    for obj in owned:
        obj.version += 1
        obj.updated_at = now
        rows.append({name: getattr(obj, name) for name in columns})
        entries.append(
            {
                "entity": obj.entity,
                "key": obj.key,
                "op": "upsert",
                "version": obj.version,
                "changed_at": now,
                "record": obj.feed_record(),
                "traceparent": context,
            }
        )
    with session.no_autoflush:
        session.execute(insert(table), rows)
        session.execute(insert(ChangeLog.__table__), entries)  # type: ignore[attr-defined]
    session.info["feed_changed"] = True
    session.flush()


def _entry(
    obj: Owned, op: str, now: datetime, record: dict[str, Any] | None, context: str | None
) -> ChangeLog:
    return ChangeLog(
        entity=obj.entity,
        key=obj.key,
        op=op,
        version=obj.version,
        changed_at=now,
        record=record,
        traceparent=context,
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
    session: Session,
    entity: str,
    since: int,
    limit: int,
    columns: Sequence[str],
    *,
    as_stored: Collection[str] = (),
) -> tuple[list[Row[Any]], int, bool]:
    """Changes to `entity` after `since`: the page (these columns of the log, `seq` first), the
    cursor to resume from, whether more wait. The `as_stored` JSON columns come as their text."""
    top = head(session)
    # plain rows, not mapped instances: the log is only read here, and loading each change into
    # the session cost as much as the rest of a feed page
    table = ChangeLog.__table__  # type: ignore[attr-defined]
    wanted = [
        cast(table.c[name], Text).label(name) if name in as_stored else table.c[name]
        for name in dict.fromkeys(("seq", *columns))
    ]
    rows = list(
        session.execute(
            select(*wanted)
            .where(
                ChangeLog.entity == entity, col(ChangeLog.seq) > since, col(ChangeLog.seq) <= top
            )
            .order_by(col(ChangeLog.seq))
            .limit(limit + 1)
        )
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    cursor = rows[-1].seq if has_more else max(top, since)
    return rows, cursor, has_more


def prune(session: Session, keep: int) -> int:
    """Drop all but the newest `keep` changes; a cursor older than what is left gets 410."""
    cutoff = head(session) - keep
    if cutoff <= pruned_through(session):
        return 0
    result = session.exec(delete(ChangeLog).where(col(ChangeLog.seq) <= cutoff))
    write_state(session, PRUNED_THROUGH, str(cutoff))
    return int(result.rowcount)
