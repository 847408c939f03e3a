"""Faults set on a running service: answers that fail or lag, pages that go wrong on the way."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Collection
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import Connection, Engine, event, or_, update
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlmodel import Field as Column
from sqlmodel import Session, SQLModel, col

from serviceline.model.fields import UtcDateTime
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import utc_field

log = logging.getLogger("serviceline.runtime.faults")
P = TypeVar("P")
# a request read from this service: its path, and who asks (None: no one the service knows)
Read = tuple[str, str | None] | None
# whichever request: whether a fault is active at all
ANY: Read = ("", None)


class FaultKind(StrEnum):
    FAIL = "fail"
    SLOW = "slow"
    DROP_PAGES = "drop_pages"
    DUPLICATE_PAGES = "duplicate_pages"
    REORDER_PAGES = "reorder_pages"
    DELAY_PAGES = "delay_pages"
    DIE_MID_BATCH = "die_mid_batch"
    DISK_FULL = "disk_full"
    READ_ONLY = "read_only"
    # a user's edit lands while a consumer reads page by page: after one answer, before the next
    EDIT_MID_READ = "edit_mid_read"


# what a service does wrong as an owner answering requests; the others act on a consumer's reads
SERVER_FAULTS = frozenset({FaultKind.FAIL, FaultKind.SLOW, FaultKind.EDIT_MID_READ})
# what its own database does wrong: every transaction meets it, whoever opens it
STORAGE_FAULTS = frozenset({FaultKind.DISK_FULL, FaultKind.READ_ONLY})
# SQLite's own limit on a database's pages, which a full disk lowers to the pages it has
SQLITE_MAX_PAGES = sqlite3.connect(":memory:").execute("PRAGMA max_page_count").fetchone()[0]


class Write(BaseModel):
    """A write to the service's own API, made as its operator."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["POST", "PUT", "PATCH", "DELETE"]
    path: str = Field(pattern="^/", description="e.g. /providers/2FR")
    body: Any = None


class FaultSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    until: UtcDateTime | None = Field(
        None, description="simulated time the fault ends; null: until cleared"
    )
    status: int = Field(503, ge=400, le=599, description="fail: the status answered")
    seconds: float = Field(1.0, ge=0, le=600, description="slow, delay_pages: real seconds")
    edge: str | None = Field(
        None, description="page faults, die_mid_batch: one of this service's edges; null: all"
    )
    times: int | None = Field(
        None, ge=1, description="how many requests or pages it affects; null: all while active"
    )
    path: str | None = Field(
        None,
        pattern="^/",
        validate_default=True,
        description="edit_mid_read: the GET path whose answer it holds back",
    )
    write: Write | None = Field(
        None,
        validate_default=True,
        description="edit_mid_read: the write made before that answer leaves",
    )
    reader: str | None = Field(
        None, description="edit_mid_read: only that service's reads; null: anyone's"
    )

    @field_validator("path", "write", "reader")
    @classmethod
    def only_for_edits(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is FaultKind.EDIT_MID_READ and value is None and info.field_name != "reader":
            raise ValueError("edit_mid_read needs path (the read) and write (the edit)")
        if kind is not FaultKind.EDIT_MID_READ and value is not None:
            raise ValueError(f"only edit_mid_read takes it, not {kind}")
        return value


class Fault(FaultSpec):
    id: int
    fired: int = Field(0, description="requests or pages it has affected so far")
    active: bool = True

    def acts_on(
        self, kinds: Collection[FaultKind], edge: str | None, now: datetime, read: Read = None
    ) -> bool:
        return (
            self.kind in kinds
            and (self.edge is None or self.edge == edge)
            and (self.path is None or read is ANY or (read is not None and read[0] == self.path))
            and (
                self.reader is None or read is ANY or (read is not None and read[1] == self.reader)
            )
            and (self.until is None or now < self.until)
            and (self.times is None or self.fired < self.times)
        )


class FaultWindow(SQLModel, table=True):
    """A fault set on this service and when it acted, on the simulated clock: the faults live in
    memory and are gone once cleared, this row stays, so a trace can say what a fault delayed."""

    __tablename__ = "kernel_fault_window"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Column(default=None, primary_key=True)
    kind: str
    edge: str | None = None
    began_at: datetime | None = utc_field()
    # the fault's own end, or earlier: when it was cleared or its process ended; None: still set
    until: datetime | None = utc_field()


def open_window(session: Session, fault: Fault, now: datetime) -> None:
    """Log a fault as it is set: written at once, so its transaction begins before it acts."""
    session.add(
        FaultWindow(kind=fault.kind.value, edge=fault.edge, began_at=now, until=fault.until)
    )
    session.flush()


def close_windows(session: Session, now: datetime) -> None:
    """Every fault still acting ends now: cleared, or gone with the process that held it."""
    session.execute(
        update(FaultWindow)
        .where(or_(col(FaultWindow.until).is_(None), col(FaultWindow.until) > now))
        .values(until=now)
    )


class PageLostError(RuntimeError):
    """A page that never arrived: the run stops, and the next one reads from the last commit."""


def kill_this_process() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Faults:
    """The faults set on one service, checked by its server and by its copier."""

    def __init__(self, clock: SimulatedClock, die: Callable[[], None] = kill_this_process) -> None:
        self.clock = clock
        self.die = die
        # the copier checks from worker threads while requests add and clear
        self._lock = threading.Lock()
        # in memory only, so a process that a fault killed starts again without it
        self._faults: list[Fault] = []
        self._last_id = 0
        # once a storage fault was set, each transaction sets its database's limits again
        self._storage = False

    def bind(self, engine: Engine) -> None:
        """Let storage faults act on `engine`: SQLite itself then refuses the writes."""
        event.listen(engine, "begin", self._limit)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "checkout", self._restore)

    def _restore(self, connection: DBAPIConnection, *_: object) -> None:
        """A connection a storage fault left read-only or full is put right once the fault is
        over, before its next BEGIN IMMEDIATE, which SQLite would refuse on it."""
        if not self._storage:
            return
        now = self.clock.now()
        with self._lock:
            if any(f.acts_on(STORAGE_FAULTS, f.edge, now, ANY) for f in self._faults):
                return
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {SQLITE_MAX_PAGES}")
        cursor.execute("PRAGMA query_only = 0")
        cursor.close()

    def _limit(self, connection: Connection) -> None:
        if not self._storage:
            return
        acting = {fault.kind for fault in self.take(STORAGE_FAULTS)}
        if connection.dialect.name == "sqlite":
            # a database at its page limit fails to grow with "database or disk is full"
            pages = 1 if FaultKind.DISK_FULL in acting else SQLITE_MAX_PAGES
            connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
            read_only = int(FaultKind.READ_ONLY in acting)
            connection.exec_driver_sql(f"PRAGMA query_only = {read_only}")
        elif FaultKind.READ_ONLY in acting:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    def add(self, spec: FaultSpec, log: Callable[[Fault, datetime], None] | None = None) -> Fault:
        """Set a fault; `log` writes it down at its start, before it can act on the database."""
        with self._lock:
            self._last_id += 1
            fault = Fault(id=self._last_id, **spec.model_dump())
        if log is not None:
            # outside the lock: the log's transaction asks the faults how its database behaves
            log(fault, self.clock.now())
        with self._lock:
            self._storage = self._storage or spec.kind in STORAGE_FAULTS
            self._faults.append(fault)
            return fault.model_copy()

    def listed(self) -> list[Fault]:
        now = self.clock.now()
        with self._lock:
            return [
                fault.model_copy(
                    update={
                        "active": fault.acts_on(
                            {fault.kind}, fault.edge, now, (fault.path or "", fault.reader)
                        )
                    }
                )
                for fault in self._faults
            ]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(
        self,
        kinds: Collection[FaultKind],
        edge: str | None = None,
        *,
        first: bool = False,
        read: Read = None,
    ) -> list[Fault]:
        """The faults of these kinds acting now (on `edge`, on `read`), each counted as fired."""
        now = self.clock.now()
        with self._lock:
            acting = [fault for fault in self._faults if fault.acts_on(kinds, edge, now, read)]
            if first:
                acting = acting[:1]
            for fault in acting:
                fault.fired += 1
            return [fault.model_copy() for fault in acting]

    async def deliver(self, edge: str, pages: AsyncIterator[P]) -> AsyncIterator[P]:
        """`pages` as they reach the copier of `edge` with the page faults set on it."""
        held: P | None = None  # a page overtaken by the one after it
        number = 0
        async for page in pages:
            number += 1
            for fault in self.take({FaultKind.DELAY_PAGES}, edge):
                await asyncio.sleep(fault.seconds)
            if self.take({FaultKind.DROP_PAGES}, edge):
                raise PageLostError(f"{edge}: page {number} was lost on the way (drop_pages)")
            if held is None and self.take({FaultKind.REORDER_PAGES}, edge):
                held = page
                continue
            yield page
            if self.take({FaultKind.DUPLICATE_PAGES}, edge):
                yield page
            if held is not None:
                yield held
                held = None
        if held is not None:
            yield held

    def mid_batch(self, edge: str) -> None:
        """Called with part of a batch written and nothing committed: die now if told to."""
        if self.take({FaultKind.DIE_MID_BATCH}, edge):
            log.warning("%s: dying mid-batch, as a die_mid_batch fault asks", edge)
            self.die()
