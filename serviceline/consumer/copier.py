"""Consumer side: keep a copy of another service's records, applying each change exactly once.

Every batch also writes what it applied to `kernel_applied` (one row per key upserted, deleted or
flagged: the owner's version when the reader carries one, when the owner's data was read and when
the batch committed) and its run's counts to `kernel_copy_run`, in the batch's own transaction, so
the log says exactly what the copy holds. A reader without versions leaves no row for a key whose
copied fields did not change; what the run read is still known, by this rule: a full run (a
snapshot, a full sync, a relist) holds, at its finish, every owner change committed by its
`started_at` to each key its copy then holds; an incremental run does so for the keys it saw,
which are those it applied plus those listed in its `seen` (kept only for readers without
versions: the others' rows say it all). docs/lag.md says how the lag is measured from this.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, Engine, Index, insert
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, Session, SQLModel, col, delete, select, update

from serviceline.consumer.known_walks import KnownSubtrees
from serviceline.consumer.readers import (
    CursorExpiredError,
    FeedPage,
    KernelReader,
    Page,
    SourceRecord,
    Walker,
    reader_for,
)
from serviceline.consumer.walks import Walks
from serviceline.model.topology import Edge, Mechanism, Policy, Reader, Topology
from serviceline.owner.feed import FeedNotifier, attach, head
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import json_field, readonly, stamp_field, upsert, utc_field
from serviceline.runtime.faults import Faults
from serviceline.runtime.upstream import Traffic, Upstream, charge, metered
from serviceline.telemetry.lineage import Lineage
from serviceline.telemetry.tracing import Tracing


class Copy(SQLModel):
    """A row copied from its owner: what version it came from, when, and what was edited here."""

    source_version: int | None = None
    copied_at: datetime | None = utc_field()
    source_deleted_at: datetime | None = utc_field()
    local_edits: list[str] = json_field()
    # the owner's values a local edit keeps out (local_wins), by column: each is counted once
    withheld: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    # new on every write of the row, so a checksum kept for it knows when it is out of date
    stamp: int | None = stamp_field()


class CopyCursor(SQLModel, table=True):
    """How far a consumer has read an edge; moved in the same transaction as what it read."""

    __tablename__ = "kernel_copy_cursor"
    edge: str = Field(primary_key=True)
    position: str | None = None
    last_sync_at: datetime | None = utc_field()
    last_full_sync_at: datetime | None = utc_field()
    # what the edge's local-edit policy has cost so far, counted with the page that cost it
    lost_local_edits: int = 0
    withheld_owner_changes: int = 0
    # how often the owner had pruned the changes after this cursor, so everything was relisted
    relists: int = 0


class AppliedChange(SQLModel, table=True):
    """One key a batch changed in the copy: the owner's version, when it was read and applied."""

    __tablename__ = "kernel_applied"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    edge: str = Field(index=True)
    key: str
    # None: the reader carries no versions; the copy holds the owner's record as of `read_at`
    version: int | None = None
    op: str  # upsert, delete or flag (kept, but marked as deleted by its owner)
    read_at: datetime | None = utc_field()
    applied_at: datetime | None = utc_field()


class LocalEdit(SQLModel, table=True):
    """One column of one copy edited here, and what the edge's policy made of the edit since.

    Written with the edit and settled in the batch that meets it, so a trace can say of each
    edit whether the owner's next change overwrote it (owner_wins) or it kept one out
    (local_wins), and which version did.
    """

    __tablename__ = "kernel_local_edit"
    __table_args__ = (
        Index("ix_kernel_local_edit_key", "edge", "key"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True)
    edge: str
    key: str
    column: str
    value: Any = Field(default=None, sa_type=JSON, nullable=True)
    edited_at: datetime | None = utc_field()
    # held: the copy still has it; overwritten: the owner's value replaced it; kept: it keeps
    # the owner's value out; replaced: a later edit here of the same column
    outcome: str = "held"
    settled_at: datetime | None = utc_field()
    owner_value: Any = Field(default=None, sa_type=JSON, nullable=True)
    owner_version: int | None = None


@dataclass(frozen=True)
class Settled:
    """What a batch did to an edit of one column: overwrote it, or kept the owner's value out."""

    key: str
    column: str
    outcome: str
    owner_value: Any
    owner_version: int | None


class CopyRun(SQLModel, table=True):
    """One run of an edge: what it cost and what it found, counted with each batch it committed."""

    __tablename__ = "kernel_copy_run"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    edge: str = Field(index=True)
    mechanism: str
    full: bool = False  # it listed everything
    started_at: datetime | None = utc_field()
    finished_at: datetime | None = utc_field()  # None: the run failed part way
    requests: int = 0
    bytes: int = 0  # response bodies received
    fetched: int = 0
    upserted: int = 0
    deleted: int = 0
    flagged: int = 0
    found_nothing: bool = True
    # a poll the fast clock knew would find nothing, counted as the last real one cost
    skipped: bool = False
    # keys an incremental run of a reader without versions saw unchanged (none applied)
    seen: list[str] | None = Field(default=None, sa_type=JSON)


# the tables every consumer keeps for its copier, beside the copies themselves
COPIER_TABLES: tuple[type[SQLModel], ...] = (CopyCursor, AppliedChange, CopyRun, LocalEdit)
ReferencedKeys = Callable[[Session, Collection[str]], set[str]]
WantedKeys = Callable[[Session], list[str]]
# the rows a page wrote, and the copies they replaced as those stood before it, by key
AfterApply = Callable[[Session, list[dict[str, Any]], Mapping[str, Copy]], None]
AnyPage = TypeVar("AnyPage", Page, FeedPage)


@dataclass(frozen=True)
class CopyTarget:
    """Where a consumer keeps one entity's copies, and which of them its own records still use."""

    model: type[Copy]
    referenced: ReferencedKeys | None = None
    # the owner keys to read one by one, for an owner that can only be asked per key
    wanted: WantedKeys | None = None
    # the consumer's own follow-up to a page of copies, in the same transaction (the real
    # services overwrite their own records from what they copied, e.g. a mentor's names)
    after_apply: AfterApply | None = None


@dataclass
class CopyStats:
    edge: str
    mechanism: str
    pages: int = 0
    fetched: int = 0
    upserted: int = 0
    deleted: int = 0
    flagged: int = 0
    unchanged: int = 0
    relisted: bool = False
    cursor: str | None = None
    lost_local_edits: int = 0
    withheld_owner_changes: int = 0
    rejected: list[str] = field(default_factory=list)
    # the local edits this run met, for the edits' own log
    settled: list[Settled] = field(default_factory=list, repr=False)
    full: bool = False
    started_at: datetime | None = None
    requests: int = 0
    bytes: int = 0
    run_id: int | None = None
    # the traffic of the run so far, and the unchanged keys it saw that no applied row names
    traffic: Traffic = field(default_factory=Traffic, repr=False)
    seen: set[str] = field(default_factory=set, repr=False)

    def result(self) -> dict[str, Any]:
        """What the run reports: its counts, without what it keeps for its own log."""
        shown = asdict(self)
        del shown["traffic"], shown["seen"], shown["settled"]
        return shown

    # not made: the owner had not moved since a run that found nothing (Copier.skip)
    skipped: bool = False
    # a run told to take only the changes made by a moment: when the first one it left was made
    next_change_at: datetime | None = None

    def found_nothing(self) -> bool:
        changed = self.upserted or self.deleted or self.flagged or self.rejected or self.relisted
        return not (changed or self.lost_local_edits or self.withheld_owner_changes)


@dataclass(frozen=True)
class FeedStart:
    """What the caller of a feed run knows already: the run reads the rest itself."""

    first: FeedPage | None = None  # the page a long-poll brought
    until: datetime | None = None  # take only the changes made by then
    position: str | None = None  # the cursor the page was read from (None: read it)


@dataclass(frozen=True)
class Followed:
    """What following a feed did: the run it made, and when the first change it left was made."""

    stats: CopyStats | None  # None: nothing new, or nothing made by then, so no run
    next_change_at: datetime | None


@dataclass(frozen=True)
class Look:
    """What a run of an edge would read: the way it reads and everything its answer depends on."""

    path: str  # "follow" (the feed), "since" (updated_since) or "snapshot"
    position: str | None
    owner_head: int | None
    # the consumer's own head, where its own records choose the keys a snapshot reads or keeps
    own_head: int | None
    # what of the request comes from the clock, e.g. the day of an Edubase file
    clock_inputs: str | None
    # how many local edits of its copies came before: a snapshot would overwrite a new one
    edits: int

    def repeats(self, quiet: QuietRun) -> bool:
        """Whether a run now must find nothing, as `quiet` did: nothing it reads has moved."""
        seen = quiet.look
        if self.owner_head is None or self.path != seen.path:
            return False
        if (self.owner_head, self.own_head, self.clock_inputs, self.edits) != (
            seen.owner_head,
            seen.own_head,
            seen.clock_inputs,
            seen.edits,
        ):
            return False
        if self.path == "follow":
            return self.position == str(self.owner_head)
        # a later updated_since reads a window inside the one that came back empty
        return self.path == "snapshot" or quiet.stats.fetched == 0


@dataclass(frozen=True)
class QuietRun:
    """A real run that found nothing, and what it read."""

    look: Look
    stats: CopyStats


class Copier:
    """Runs the edges into one service."""

    def __init__(
        self,
        service: str,
        topology: Topology,
        engine: Engine,
        clock: SimulatedClock,
        upstreams: Mapping[str, Upstream],
        targets: Mapping[str, CopyTarget],
        *,
        year: int,
        page_size: int,
        notifier: FeedNotifier | None = None,
        faults: Faults | None = None,
        skip_quiet_polls: bool = True,
        tracing: Tracing | None = None,
        lineage: Lineage | None = None,
    ) -> None:
        self.service = service
        self.topology = topology
        self.engine = engine
        self.clock = clock
        self.upstreams = upstreams
        self.targets = targets
        self.year = year
        self.page_size = page_size
        self.notifier = notifier
        self.faults = faults
        self.skip_quiet_polls = skip_quiet_polls
        self.tracing = tracing
        self.lineage = lineage
        self.edges = {edge.name: edge for edge in topology.edges_into(service)}
        # owners' change-log heads the line's control knows to hold for the advance under way
        self.heads: Mapping[str, int] = {}
        # by edge and whether the run is a full one
        self._quiet: dict[tuple[str, bool], QuietRun] = {}
        self._edits: Counter[str] = Counter()
        # the walks the runs of one advance share: none for a run asked for on its own
        self.walks: Walks | None = None
        # by walk group or edge: what tree walks read before, for the simulation to take again
        self._known: dict[str, KnownSubtrees] = {}
        # a page of copies may change this service's own records, in a job no one else sees
        self.changes_own_records = any(t.after_apply is not None for t in targets.values())
        # one run of an edge at a time, whoever starts it: the clock, a request, a follower
        self._locks = {name: asyncio.Lock() for name in self.edges}
        # the edges with a run under way, whose latest run may not have finished yet
        self.running: set[str] = set()
        # runs of each edge so far: a cursor read between two equal counts is still current
        self._runs: Counter[str] = Counter()
        missing = {edge.entity for edge in self.edges.values()} - set(targets)
        if missing:
            raise ValueError(f"{service} copies {sorted(missing)} but declares no copy table")

    @contextlib.contextmanager
    def knowing(self, heads: Mapping[str, int]) -> Iterator[None]:
        """Runs within hold these owners' heads as current, and share their walks."""
        self.heads = heads
        self.walks = Walks(self.clock)
        try:
            yield
        finally:
            self.heads = {}
            self.walks = None

    def edited(self, edge_name: str) -> None:
        """A copy of the edge was edited here: its next snapshot may overwrite the edit."""
        self._edits[edge_name] += 1

    async def run(
        self, edge_name: str, *, full: bool = False, until: datetime | None = None
    ) -> CopyStats:
        """Run the edge now; a feed followed `until` a moment takes only the changes made by then.

        The changes after `until` wait for a later run, which `next_change_at` says when.
        """
        edge = self.edges[edge_name]
        if edge.mechanism is Mechanism.EVENT:
            raise ValueError(f"{edge.name} is driven by {edge.consumer}'s own events, not run")
        return await self._observed(edge, full, partial(self._attempt, edge, full, until))

    async def driven(
        self, edge_name: str, work: Callable[[CopyStats], Awaitable[None]]
    ) -> CopyStats:
        """A run of an edge its consumer's own job makes (mechanism EVENT: Register's TRN polls).

        Logged, metered, traced and told to OpenLineage as the copier's own runs are; `work`
        copies, and counts in the stats what it fetched and wrote.
        """
        edge = self.edges[edge_name]
        if edge.mechanism is not Mechanism.EVENT:
            raise ValueError(f"{edge.name} is run by the copier, not by {edge.consumer}'s jobs")

        async def run() -> CopyStats:
            stats = CopyStats(edge.name, edge.mechanism.value, started_at=self.clock.now())
            try:
                with metered() as stats.traffic:
                    await work(stats)
            except Exception:
                with contextlib.suppress(DBAPIError):
                    await to_thread.run_sync(self._close, stats, False)
                raise
            await to_thread.run_sync(self._close, stats, True)
            return stats

        return await self._observed(edge, False, run)

    async def _observed(
        self, edge: Edge, full: bool, work: Callable[[], Awaitable[CopyStats]]
    ) -> CopyStats:
        """A run in its trace span, where tracing is asked for."""
        if self.tracing is None:
            return await self._told(edge, work)
        with self.tracing.copy_run(edge, full=full) as span:
            stats = await self._told(edge, work)
            self.tracing.ran(span, stats)
            return stats

    async def _told(self, edge: Edge, work: Callable[[], Awaitable[CopyStats]]) -> CopyStats:
        """A run told to OpenLineage, where asked for: START now, COMPLETE or FAIL as it ends.

        A poll skipped because its answer is known tells the same, so the events do not depend
        on skip_quiet_polls.
        """
        if self.lineage is None:
            return await work()
        lineage = self.lineage.start(edge, self.targets[edge.entity].model, self.clock.now())
        try:
            stats = await work()
        except BaseException as error:
            lineage.failed(self.clock.now(), error)
            raise
        lineage.completed(self.clock.now(), stats.upserted + stats.flagged)
        return stats

    async def _attempt(self, edge: Edge, full: bool, until: datetime | None) -> CopyStats:
        async with self._locks[edge.name]:
            look = await to_thread.run_sync(self._look, edge, full)
            # a run cut at a moment leaves changes behind: it is no poll that found nothing
            if until is None and self._skippable(edge, full, look):
                return await self.skip(edge.name, full=full)
            self._quiet.pop((edge.name, full), None)
            stats = await self._run(edge, full, FeedStart(until=until))
            if look.owner_head is not None and stats.found_nothing() and until is None:
                self._quiet[(edge.name, full)] = QuietRun(look, stats)
            return stats

    async def follow(
        self, edge_name: str, *, wait: float = 0.0, until: datetime | None = None
    ) -> Followed:
        """Read the owner's feed from the cursor, waiting up to `wait` seconds for a change, and
        apply the page it answers with; `until`: only the changes made by then.

        The run begins when the owner answers, and applies its page as any run of the edge
        does: the same batches, commits and applied log. Nothing new, or nothing made by
        `until`, makes no run. A read that fails is logged as a failed run, and raised. An edge
        never read by feed before lists everything first, as its first scheduled run would.
        """
        edge = self.edges[edge_name]
        runs = self._runs[edge.name]
        position = await to_thread.run_sync(self._position, edge)
        if position is None or not position.isdigit():
            return Followed(await self.run(edge_name), None)
        since = int(position)
        reader = self._reader(edge, None)
        assert isinstance(reader, KernelReader), f"{edge.name} reads no change feed"
        with metered() as spent:
            try:
                page = await reader.changes(since, wait)
            except CursorExpiredError:  # pruned past the cursor: relist, as any run would
                return Followed(await self.run(edge_name), None)
            except Exception:
                failed = CopyStats(edge.name, edge.mechanism.value, started_at=self.clock.now())
                failed.traffic = spent
                with contextlib.suppress(DBAPIError):
                    await to_thread.run_sync(self._close, failed, False)
                raise
        if not page.changes and page.cursor == since:
            return Followed(None, None)
        taken, later = _cut(page, until)
        if not taken.changes and later is not None:
            return Followed(None, later)
        async with self._locks[edge.name]:
            self._quiet.pop((edge.name, False), None)
            # no run since the cursor was read: it stands where the page was read from
            known = position if self._runs[edge.name] == runs else None
            start = FeedStart(first=page, until=until, position=known)
            work = partial(self._run, edge, False, start, spent=spent)
            stats = await self._observed(edge, False, work)
            return Followed(stats, stats.next_change_at)

    def _skippable(self, edge: Edge, full: bool, look: Look) -> bool:
        quiet = self._quiet.get((edge.name, full))
        return (
            self.skip_quiet_polls
            and quiet is not None
            and not (self.faults is not None and self.faults.listed())
            and look.repeats(quiet)
        )

    async def skip(self, edge_name: str, *, full: bool) -> CopyStats:
        """Leave what a run that finds nothing leaves, without asking the owner.

        Only for an edge whose last real run found nothing and read what a run now would.
        """
        edge = self.edges[edge_name]
        quiet = self._quiet[(edge.name, full)]
        now = self.clock.now()
        # its run is logged as the real one was, with what that one cost
        stats = replace(
            quiet.stats,
            rejected=[],
            cursor=None,
            skipped=True,
            started_at=now,
            run_id=None,
            traffic=Traffic(quiet.stats.requests, quiet.stats.bytes),
            seen=set(),
        )
        self._runs[edge.name] += 1
        # nothing new on the feed: the cursor stays where it is
        if quiet.look.path == "follow":
            await to_thread.run_sync(self._close, stats, True)
            return stats
        snapshot = quiet.look.path == "snapshot"
        position = quiet.stats.cursor if snapshot and edge.mechanism is Mechanism.FEED else None
        finish = partial(self._finish, edge, now, position, snapshot, stats, finished=True)
        await to_thread.run_sync(finish)
        return stats

    def _look(self, edge: Edge, full: bool) -> Look:
        with Session(readonly(self.engine)) as session:
            cursor = session.get(CopyCursor, edge.name)
            position = None if cursor is None else cursor.position
            target = self.targets[edge.entity]
            if edge.mechanism is Mechanism.FEED and edge.reader is Reader.KERNEL and not full:
                path = "follow" if position is None or position.isdigit() else "snapshot"
            elif edge.mechanism is Mechanism.UPDATED_SINCE and not full:
                path = "since" if position is not None and not position.isdigit() else "snapshot"
            else:
                path = "snapshot"
            if path == "follow" and position is None:
                path = "first"  # a first follow reads from 0: nothing to compare with
            own = target.wanted is not None or (edge.keep_referenced and target.referenced)
            day = None
            if edge.reader is Reader.EDUBASE_CSV:
                day = (self.clock.now() - timedelta(days=1)).strftime("%Y%m%d")
            return Look(
                path,
                position,
                self.heads.get(edge.owner),
                head(session) if own and path == "snapshot" else None,
                day,
                self._edits[edge.name],
            )

    def _reader(self, edge: Edge, wanted: list[str] | None) -> Any:
        return reader_for(
            edge,
            self.upstreams[edge.owner],
            edge.source_key or self.topology.entity(edge.entity).key,
            self.clock,
            self.year,
            self.page_size,
            wanted,
            known=self._known_walk(edge),
        )

    async def _run(
        self,
        edge: Edge,
        full: bool,
        start: FeedStart = FeedStart(),
        *,
        spent: Traffic | None = None,
    ) -> CopyStats:
        target = self.targets[edge.entity]
        wanted = None
        if target.wanted is not None:
            wanted = await to_thread.run_sync(self._wanted, target.wanted)
        reader = self._reader(edge, wanted)
        if self.walks is not None and edge.walk is not None and isinstance(reader, Walker):
            reader = self.walks.share(edge, reader)
        stats = CopyStats(edge.name, edge.mechanism.value, started_at=self.clock.now())
        self.running.add(edge.name)
        try:
            with metered() as stats.traffic:
                if spent is not None:  # the long-poll that brought the first page
                    charge(spent)
                try:
                    await self._read(edge, reader, stats, full=full, start=start)
                except Exception:
                    # a database refusing writes fails the run already: that error is the one
                    with contextlib.suppress(DBAPIError):
                        await to_thread.run_sync(self._close, stats, False)
                    raise
            await to_thread.run_sync(self._close, stats, True)
        finally:
            self.running.discard(edge.name)
            self._runs[edge.name] += 1
        return stats

    def _known_walk(self, edge: Edge) -> KnownSubtrees | None:
        """The edge's remembered tree walk, told the owner's head when the control vouches it."""
        if edge.reader is not Reader.PUBLISH_V1_PROVIDER_TREE or not self.skip_quiet_polls:
            return None
        known = self._known.setdefault(edge.walk or edge.name, KnownSubtrees())
        faulted = self.faults is not None and self.faults.listed()
        known.head = None if faulted else self.heads.get(edge.owner)
        return known

    async def _read(
        self,
        edge: Edge,
        reader: Any,
        stats: CopyStats,
        *,
        full: bool,
        start: FeedStart,
    ) -> None:
        if edge.mechanism is Mechanism.FEED and isinstance(reader, KernelReader) and not full:
            await self._follow(edge, reader, stats, start)
        elif edge.mechanism is Mechanism.UPDATED_SINCE and not full:
            await self._updated_since(edge, reader, stats)
        else:
            await self._snapshot(edge, reader, stats)

    def _wanted(self, wanted: WantedKeys) -> list[str]:
        with Session(readonly(self.engine)) as session:
            return wanted(session)

    def _delivered(self, edge: Edge, pages: AsyncIterator[AnyPage]) -> AsyncIterator[AnyPage]:
        """The pages as they reach this copier: through the faults set on it, if any."""
        return pages if self.faults is None else self.faults.deliver(edge.name, pages)

    async def _follow(
        self,
        edge: Edge,
        reader: KernelReader,
        stats: CopyStats,
        start: FeedStart,
    ) -> None:
        position = start.position
        if position is None:
            position = await to_thread.run_sync(self._position, edge)
        if position is not None and not position.isdigit():
            # the edge was read another way before: no seq to resume from
            await self._snapshot(edge, reader, stats)
            return
        since = int(position) if position else 0
        # a page that arrives before the one ahead of it waits for it: changes apply in feed
        # order, since a deleted copy leaves no version to refuse an older change arriving late
        early: dict[int, FeedPage] = {}
        try:
            async for arrived in self._delivered(edge, reader.follow(since, start.first)):
                stats.pages += 1
                stats.fetched += len(arrived.changes)
                if arrived.since < since:  # delivered again: applied already
                    stats.unchanged += len(arrived.changes)
                    continue
                early[arrived.since] = arrived
                while (page := early.pop(since, None)) is not None:
                    page, left = _cut(page, start.until)
                    since = max(since, page.cursor)
                    if page.changes or str(since) != position:
                        await to_thread.run_sync(
                            self._apply,
                            edge,
                            Page(page.changes),
                            self.clock.now(),
                            str(since),
                            stats,
                        )
                        position = str(since)
                    if left is not None:  # the owner's later changes wait for their moment
                        stats.next_change_at = left
                        return
        except CursorExpiredError:
            stats.relisted = True
            await self._snapshot(edge, reader, stats)

    async def _updated_since(self, edge: Edge, reader: Any, stats: CopyStats) -> None:
        position = await to_thread.run_sync(self._position, edge)
        if position is None or position.isdigit():  # never read, or read by feed before
            await self._snapshot(edge, reader, stats)
            return
        started = self.clock.now()
        since = datetime.fromisoformat(position) - edge.overlap
        async for page in self._delivered(edge, reader.pages(since)):
            stats.pages += 1
            stats.fetched += len(page.records)
            await to_thread.run_sync(self._apply, edge, page, self.clock.now(), None, stats)
        await to_thread.run_sync(self._finish, edge, started, None, False, stats)

    async def _snapshot(self, edge: Edge, reader: Any, stats: CopyStats) -> None:
        """List everything, upsert it, then remove copies the owner no longer has."""
        started = self.clock.now()
        stats.full = True
        seen: set[str] = set()
        head: int | None = None
        async for page in self._delivered(edge, reader.pages(None)):
            if page.head is not None:
                # pages may arrive out of order: resume from the earliest head any one saw
                head = page.head if head is None else min(head, page.head)
            stats.pages += 1
            stats.fetched += len(page.records)
            seen.update(record.key for record in page.records)
            now = self.clock.now() + page.delay
            await to_thread.run_sync(
                partial(self._apply, edge, page, now, None, stats, relisting=True)
            )
        # a feed edge resumes from the head seen when listing began, so nothing between is lost
        position = str(head or 0) if edge.mechanism is Mechanism.FEED else None
        await to_thread.run_sync(self._finish, edge, started, position, True, stats, seen)

    def _position(self, edge: Edge) -> str | None:
        with Session(readonly(self.engine)) as session:
            cursor = session.get(CopyCursor, edge.name)
            return None if cursor is None else cursor.position

    def _apply(
        self,
        edge: Edge,
        page: Page,
        now: datetime,
        position: str | None,
        stats: CopyStats,
        *,
        relisting: bool = False,
    ) -> None:
        target = self.targets[edge.entity]
        model = target.model
        key = edge.key_field
        key_column = getattr(model, key)
        # attached, so an after_apply that changes the consumer's own records logs them
        with (
            attach(Session(self.engine), self.clock, self.notifier) as session,
            contextlib.ExitStack() as traced,
        ):
            latest: dict[str, SourceRecord] = {}
            for record in page.records:
                if not _is_superseded(record, latest.get(record.key)):
                    latest[record.key] = record
            existing = {
                getattr(row, key): row
                for row in session.exec(select(model).where(col(key_column).in_(list(latest))))
            }
            rows: list[dict[str, Any]] = []
            gone: dict[str, int | None] = {}
            lost, withheld = stats.lost_local_edits, stats.withheld_owner_changes
            settled = len(stats.settled)
            for record_key, record in latest.items():
                current = existing.get(record_key)
                if _is_older(record, current, relisting=relisting):
                    stats.unchanged += 1
                    continue
                if record.deleted or not edge.scope.admits(record.fields):
                    if current is not None:
                        gone[record_key] = record.version
                    continue
                row = self._row(edge, model, record, now, current, stats)
                if row is None:
                    continue
                if current is not None and record.version is None and _same(current, row):
                    stats.unchanged += 1
                    if not relisting:
                        stats.seen.add(record_key)
                    continue
                rows.append(row)
            if page.partition is not None:
                column, value = page.partition
                gone.update(
                    (k, None)
                    for k in session.exec(select(key_column).where(getattr(model, column) == value))
                    if k not in latest
                )
            if self.tracing is not None:  # each write's changes applied in a span of its trace
                applied = [row[key] for row in rows] + list(gone)
                contexts = {str(k): latest[str(k)].traceparent for k in applied if str(k) in latest}
                traced.enter_context(self.tracing.applying(edge, contexts))
            # a Core upsert: the copies loaded before it keep the values they had
            upsert(session, model, rows, key)
            if target.after_apply is not None and rows:
                target.after_apply(session, rows, existing)
            applied_at = max(now, self.clock.now())
            _log_applied(
                session,
                edge,
                [(row[key], row["source_version"], "upsert") for row in rows],
                now,
                applied_at,
            )
            if self.faults is not None:
                self.faults.mid_batch(edge.name)
            stats.upserted += len(rows)
            self._remove(session, edge, target, gone, now, applied_at, stats)
            lost = stats.lost_local_edits - lost
            withheld = stats.withheld_owner_changes - withheld
            if lost or withheld:
                self._count(session, edge, lost, withheld)
            _log_settled(session, edge, stats.settled[settled:], applied_at)
            if position is not None:
                self._move_cursor(session, edge, position, now, full=False)
            self._count_run(session, stats)
            session.commit()

    def _row(
        self,
        edge: Edge,
        model: type[Copy],
        record: SourceRecord,
        now: datetime,
        current: Copy | None,
        stats: CopyStats,
    ) -> dict[str, Any] | None:
        values = edge.translate(record.fields)
        try:
            row = _validated(model, values)
        except ValidationError as error:
            stats.rejected.append(f"{record.key}: {error.errors()[0]['msg']}")
            return None
        local_edits, withheld = (
            ([], {}) if current is None else _settle(edge, record, current, row, stats)
        )
        row.update(
            source_version=record.version,
            copied_at=now,
            source_deleted_at=None,
            local_edits=local_edits,
            withheld=withheld,
        )
        return row

    def _remove(
        self,
        session: Session,
        edge: Edge,
        target: CopyTarget,
        keys: Mapping[str, int | None],
        now: datetime,
        applied_at: datetime,
        stats: CopyStats,
    ) -> None:
        """Delete these copies, or flag those the consumer's records still use; log each.

        `keys` gives the owner's version that removed each, None when none is known.
        """
        if not keys:
            return
        model = target.model
        key_column = col(getattr(model, edge.key_field))
        kept: set[str] = set()
        if edge.keep_referenced and target.referenced is not None:
            kept = target.referenced(session, list(keys))
        removed = [k for k in keys if k not in kept]
        # a copy flagged already is not flagged again: nothing changes in it
        flagged: list[str] = []
        for chunk in _chunks([k for k in keys if k in kept]):
            flagged += session.exec(
                select(key_column).where(
                    key_column.in_(chunk), col(model.source_deleted_at).is_(None)
                )
            )
        for chunk in _chunks(removed):
            session.exec(delete(model).where(key_column.in_(chunk)))
        for chunk in _chunks(flagged):
            session.exec(update(model).where(key_column.in_(chunk)).values(source_deleted_at=now))
        logged = [(k, keys[k], "delete") for k in removed] + [(k, keys[k], "flag") for k in flagged]
        _log_applied(session, edge, logged, now, applied_at)
        stats.deleted += len(removed)
        stats.flagged += len(flagged)

    def _finish(
        self,
        edge: Edge,
        started: datetime,
        position: str | None,
        full: bool,
        stats: CopyStats,
        seen: set[str] | None = None,
        *,
        finished: bool = False,
    ) -> None:
        target = self.targets[edge.entity]
        with Session(self.engine) as session:
            if seen is not None:
                keys = session.exec(select(col(getattr(target.model, edge.key_field))))
                vanished = dict.fromkeys(k for k in keys if k not in seen)
                now = max(started, self.clock.now())
                self._remove(session, edge, target, vanished, started, now, stats)
            self._move_cursor(session, edge, position or started.isoformat(), started, full=full)
            if stats.relisted:
                self._count_relist(session, edge)
            stats.cursor = position or started.isoformat()
            self._count_run(session, stats, finished=finished)
            session.commit()

    def _count_run(self, session: Session, stats: CopyStats, *, finished: bool = False) -> None:
        """Write the run's figures so far into the transaction committing its latest work."""
        run = None if stats.run_id is None else session.get(CopyRun, stats.run_id)
        if run is None:
            run = CopyRun(
                edge=stats.edge,
                mechanism=stats.mechanism,
                full=stats.full,
                started_at=stats.started_at,
            )
        stats.requests, stats.bytes = stats.traffic.requests, stats.traffic.bytes
        run.full = stats.full
        run.requests, run.bytes = stats.requests, stats.bytes
        run.fetched, run.upserted = stats.fetched, stats.upserted
        run.deleted, run.flagged = stats.deleted, stats.flagged
        run.found_nothing = not (stats.upserted or stats.deleted or stats.flagged)
        run.skipped = stats.skipped
        run.seen = sorted(stats.seen) or None
        if finished:
            run.finished_at = max(stats.started_at or self.clock.now(), self.clock.now())
        session.add(run)
        session.flush()
        stats.run_id = run.id

    def _close(self, stats: CopyStats, finished: bool) -> None:
        """The run's last figures: what it spent after its last commit, and whether it finished."""
        with Session(self.engine) as session:
            self._count_run(session, stats, finished=finished)
            session.commit()

    @staticmethod
    def _count(session: Session, edge: Edge, lost: int, withheld: int) -> None:
        cursor = session.get(CopyCursor, edge.name) or CopyCursor(edge=edge.name)
        cursor.lost_local_edits += lost
        cursor.withheld_owner_changes += withheld
        session.add(cursor)
        session.flush()

    @staticmethod
    def _count_relist(session: Session, edge: Edge) -> None:
        cursor = session.get_one(CopyCursor, edge.name)
        cursor.relists += 1
        session.add(cursor)
        session.flush()

    @staticmethod
    def _move_cursor(
        session: Session, edge: Edge, position: str, at: datetime, *, full: bool
    ) -> None:
        cursor = session.get(CopyCursor, edge.name) or CopyCursor(edge=edge.name)
        cursor.position = position
        cursor.last_sync_at = at
        if full:
            cursor.last_full_sync_at = at
        session.add(cursor)
        session.flush()


_NOTHING = object()


def _cut(page: FeedPage, until: datetime | None) -> tuple[FeedPage, datetime | None]:
    """The page's changes made by `until`, its cursor at the last of them, and when the first
    change left was made (None: it leaves none)."""
    if until is None:
        return page, None
    for index, change in enumerate(page.changes):
        if change.changed_at is not None and change.changed_at > until:
            taken = page.changes[:index]
            cursor = taken[-1].seq if taken and taken[-1].seq is not None else page.since
            return FeedPage(taken, cursor, False, page.since), change.changed_at
    return page, None


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


def _log_applied(
    session: Session,
    edge: Edge,
    changes: list[tuple[str, int | None, str]],
    read_at: datetime,
    applied_at: datetime,
) -> None:
    """One row per (key, version, op) a batch applied: one statement for the whole batch."""
    if not changes:
        return
    rows = [
        {
            "edge": edge.name,
            "key": str(key),
            "version": version,
            "op": op,
            "read_at": read_at,
            "applied_at": applied_at,
        }
        for key, version, op in changes
    ]
    session.execute(insert(AppliedChange), rows)


def _validated(model: type[Copy], values: dict[str, Any]) -> dict[str, Any]:
    """`model.model_validate(values).model_dump(include=set(values))`, at a tenth of the cost.

    A table model's model_validate sets every field again through SQLAlchemy's instrumentation
    for a mapped instance the copier throws away; the same validator and serializer run here on
    an instance the mapper never sees. A model validator may want a mapped instance: not here.
    """
    if model.__pydantic_decorators__.model_validators:
        return model.model_validate(values).model_dump(include=set(values))
    checked = model.__new__(model)
    model.__pydantic_validator__.validate_python(values, self_instance=checked)
    row: dict[str, Any] = model.__pydantic_serializer__.to_python(checked, include=set(values))
    return row


def _settle(
    edge: Edge, record: SourceRecord, current: Copy, row: dict[str, Any], stats: CopyStats
) -> tuple[list[str], dict[str, Any]]:
    """Apply the edge's policy to the columns edited here; `row` becomes what is stored.

    Returns the columns still edited here and the owner's values they keep out.
    """
    kept: list[str] = []
    withheld: dict[str, Any] = {}
    for column in current.local_edits:
        local = getattr(current, column)
        if row[column] == local:
            kept.append(column)
        elif edge.policy is Policy.LOCAL_WINS:
            owners = to_jsonable_python(row[column])
            # a snapshot re-reads the same owner value at every sync: count it the first time
            if current.withheld.get(column, _NOTHING) != owners:
                stats.withheld_owner_changes += 1
                stats.settled.append(Settled(record.key, column, "kept", owners, record.version))
            withheld[column] = owners
            row[column] = local
            kept.append(column)
        else:
            stats.lost_local_edits += 1
            owners = to_jsonable_python(row[column])
            stats.settled.append(Settled(record.key, column, "overwritten", owners, record.version))
    return kept, withheld


def _log_settled(session: Session, edge: Edge, settled: list[Settled], at: datetime) -> None:
    """Mark each edit a batch met with what became of it; only a batch that met one pays."""
    for done in settled:
        session.execute(
            update(LocalEdit)
            .where(
                col(LocalEdit.edge) == edge.name,
                col(LocalEdit.key) == done.key,
                col(LocalEdit.column) == done.column,
                col(LocalEdit.outcome).in_(("held", "kept")),
            )
            .values(
                outcome=done.outcome,
                settled_at=at,
                owner_value=done.owner_value,
                owner_version=done.owner_version,
            )
        )


def log_edit(
    session: Session, edge: Edge, key: str, values: Mapping[str, Any], at: datetime
) -> None:
    """Log a local edit of these columns; an earlier edit of one of them is replaced by it."""
    session.execute(
        update(LocalEdit)
        .where(
            col(LocalEdit.edge) == edge.name,
            col(LocalEdit.key) == key,
            col(LocalEdit.column).in_(list(values)),
            col(LocalEdit.outcome).in_(("held", "kept")),
        )
        .values(outcome="replaced", settled_at=at)
    )
    session.execute(
        insert(LocalEdit),
        [
            {
                "edge": edge.name,
                "key": key,
                "column": column,
                "value": to_jsonable_python(value),
                "edited_at": at,
            }
            for column, value in values.items()
        ],
    )


def _is_older(record: SourceRecord, current: Copy | None, *, relisting: bool) -> bool:
    """A redelivered or reordered change: the copy already holds this version or a later one.

    A relisting reads the owner as it is now, so a copy that claims a later version than the
    owner holds is wrong there, and is put right rather than kept for ever.
    """
    if current is None or record.version is None or current.source_version is None:
        return False
    if relisting:
        return record.version == current.source_version
    return record.version <= current.source_version


def _is_superseded(record: SourceRecord, seen: SourceRecord | None) -> bool:
    """Within a page the newest version wins, or the later record when there are no versions."""
    return (
        seen is not None
        and record.version is not None
        and seen.version is not None
        and record.version < seen.version
    )


def _same(current: Copy, row: dict[str, Any]) -> bool:
    ignored = {"copied_at", "local_edits"}
    return all(
        getattr(current, name) == value for name, value in row.items() if name not in ignored
    )
