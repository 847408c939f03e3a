"""Consumer side: keep a copy of another service's records, read on the edge's schedule by feed,
`updated_since` or snapshot, or followed as the owner writes. Each page is written by `Batches`
(serviceline.consumer.batches), exactly once; polls known to find nothing, skipped by
`QuietPolls` (serviceline.consumer.quiet)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import TypeVar

from anyio import to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from serviceline.consumer.batches import Batches, CopyStats, SkippedRun
from serviceline.consumer.known_walks import KnownFromLog
from serviceline.consumer.quiet import QuietPolls
from serviceline.consumer.readers import (
    CursorExpiredError,
    FeedPage,
    KernelReader,
    Page,
    ReadContext,
    SourceReader,
    Walker,
    reader_for,
)
from serviceline.consumer.tables import CopyTarget
from serviceline.consumer.walks import Walks
from serviceline.model.topology import Edge, Mechanism, Topology
from serviceline.owner.feed import FeedNotifier
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.faults import Faults
from serviceline.runtime.upstream import Traffic, Upstream, charge, metered
from serviceline.telemetry.lineage import Lineage
from serviceline.telemetry.tracing import Tracing

AnyPage = TypeVar("AnyPage", Page, FeedPage)
log = logging.getLogger("serviceline.consumer.copier")


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


class Copier:
    """Runs the edges into one service."""

    def __init__(
        self,
        *,
        service: str,
        topology: Topology,
        engine: Engine,
        clock: SimulatedClock,
        upstreams: Mapping[str, Upstream],
        targets: Mapping[str, CopyTarget],
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
        self.faults = faults
        self.tracing = tracing
        self.lineage = lineage
        self.edges = {edge.name: edge for edge in topology.edges_into(service)}
        self.batches = Batches(
            engine=engine,
            clock=clock,
            targets=targets,
            notifier=notifier,
            faults=faults,
            tracing=tracing,
        )
        self.quiet = QuietPolls(
            engine=engine, clock=clock, targets=targets, enabled=skip_quiet_polls
        )
        # owners' change-log heads the line's control knows to hold for the advance under way
        self.heads: Mapping[str, int] = {}
        # the walks the runs of one advance share: none for a run asked for on its own
        self.walks: Walks | None = None
        # by walk group or edge: what the edges' readers remember, for the simulation to take again
        self._known: dict[str, KnownFromLog] = {}
        # a page of copies may change this service's own records, in a job no one else sees
        self.changes_own_records = any(t.after_apply is not None for t in targets.values())
        # one run of an edge at a time, whoever starts it: the clock, a request, a follower
        self._locks = {name: asyncio.Lock() for name in self.edges}
        # the edges with a run under way, whose latest run may not have finished yet
        self.running: set[str] = set()
        # polls skipped and not logged yet: a skip costs no transaction of its own
        self._skipped: list[SkippedRun] = []
        # within an advance: whether a run of an edge would find nothing, by what it depends on
        self._forecasts: dict[tuple[str, bool, str | None, int, int], bool] = {}
        # runs of each edge so far: a cursor read between two equal counts is still current
        self._runs: Counter[str] = Counter()
        missing = {edge.entity for edge in self.edges.values()} - set(targets)
        if missing:
            raise ValueError(f"{service} copies {sorted(missing)} but declares no copy table")

    @contextlib.asynccontextmanager
    async def knowing(self, heads: Mapping[str, int]) -> AsyncIterator[None]:
        """Runs within hold these owners' heads as current, and share their walks; the polls
        they skip are logged as it ends, if no real run logged them before."""
        self.heads = heads
        self.walks = Walks(self.clock)
        try:
            yield
        finally:
            self.heads = {}
            self.walks = None
            self._forecasts.clear()
            try:
                await self._log_skipped()
            except DBAPIError as error:
                log.warning("could not log %d skipped polls: %s", len(self._skipped), error)

    async def _log_skipped(self) -> None:
        """Log the polls skipped so far, before a real run logs anything after them."""
        if not self._skipped:
            return
        runs, self._skipped = self._skipped, []
        try:
            await to_thread.run_sync(self.batches.log_skipped, runs)
        except BaseException:
            self._skipped[:0] = runs
            raise

    def edited(self, edge_name: str) -> None:
        """A copy of the edge was edited here: its next snapshot may overwrite the edit."""
        self.quiet.edited(edge_name)
        self._forecasts.clear()

    def finds_nothing(self, edge_name: str, full: bool, at: datetime) -> bool:
        """Whether a run at `at`, if no other run of the edge comes first, would be skipped:
        it would repeat a run that found nothing, the owners' heads of this advance holding."""
        edge = self.edges[edge_name]
        owner_head = self.heads.get(edge.owner)
        faulted = self.faults is not None and bool(self.faults.listed())
        if owner_head is None or faulted or not self.quiet.enabled:
            return False
        day = at.date().isoformat() if edge.reader.daily else None
        key = (edge.name, full, day, self._runs[edge.name], owner_head)
        if key not in self._forecasts:
            look = self.quiet.look(edge, full=full, owner_head=owner_head, at=at)
            quiet = self.quiet.repeated(edge, full=full, look=look, faulted=False)
            self._forecasts[key] = quiet is not None
        return self._forecasts[key]

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
                    await to_thread.run_sync(partial(self.batches.close, stats, finished=False))
                raise
            await to_thread.run_sync(partial(self.batches.close, stats, finished=True))
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
            owner_head = self.heads.get(edge.owner)
            look = await to_thread.run_sync(
                partial(self.quiet.look, edge, full=full, owner_head=owner_head)
            )
            faulted = self.faults is not None and bool(self.faults.listed())
            # a run cut at a moment leaves changes behind: it is no poll that found nothing
            if until is None and self.quiet.repeated(edge, full=full, look=look, faulted=faulted):
                return self.skip(edge.name, full=full)
            self.quiet.forget(edge, full=full)
            stats = await self._run(edge, full, FeedStart(until=until))
            if until is None:
                self.quiet.remember(edge, full=full, look=look, stats=stats)
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
        await self._log_skipped()
        runs = self._runs[edge.name]
        position = await to_thread.run_sync(self.batches.position, edge)
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
                    await to_thread.run_sync(partial(self.batches.close, failed, finished=False))
                raise
        if not page.changes and page.cursor == since:
            return Followed(None, None)
        taken, later = _cut(page, until)
        if not taken.changes and later is not None:
            return Followed(None, later)
        async with self._locks[edge.name]:
            self.quiet.forget(edge, full=False)
            # no run since the cursor was read: it stands where the page was read from
            known = position if self._runs[edge.name] == runs else None
            start = FeedStart(first=page, until=until, position=known)
            work = partial(self._run, edge, False, start, spent=spent)
            stats = await self._observed(edge, False, work)
            return Followed(stats, stats.next_change_at)

    def skip(self, edge_name: str, *, full: bool) -> CopyStats:
        """Leave what a run that finds nothing leaves, without asking the owner.

        Only for an edge whose last real run found nothing and read what a run now would. Its
        log waits for the next real run or the end of the advance (`knowing`), which no reader
        of the log sees before.
        """
        edge = self.edges[edge_name]
        quiet = self.quiet.last(edge, full=full)
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
        snapshot = quiet.look.path == "snapshot"
        position = None  # nothing new on the feed: the cursor stays where it is
        if snapshot and edge.mechanism is Mechanism.FEED:
            position = quiet.stats.cursor  # the head the snapshot listed, as before
        if quiet.look.path != "follow":
            position = position or now.isoformat()
        stats.cursor = position
        self._skipped.append(SkippedRun(edge, stats, position, snapshot, now))
        return stats

    def _reader(self, edge: Edge, wanted: list[str] | None) -> SourceReader | KernelReader:
        context = ReadContext(
            edge=edge,
            upstream=self.upstreams[edge.owner],
            key_field=edge.source_key or self.topology.entity(edge.entity).key,
            clock=self.clock,
            year=self.year,
            page_size=self.page_size,
            wanted=wanted or (),
            known=self._known_walk(edge),
        )
        return reader_for(context)

    async def _run(
        self,
        edge: Edge,
        full: bool,
        start: FeedStart = FeedStart(),
        *,
        spent: Traffic | None = None,
    ) -> CopyStats:
        await self._log_skipped()
        target = self.targets[edge.entity]
        wanted = None
        if target.wanted is not None:
            wanted = await to_thread.run_sync(self.batches.wanted, target.wanted)
        reader: SourceReader | KernelReader = self._reader(edge, wanted)
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
                        await to_thread.run_sync(partial(self.batches.close, stats, finished=False))
                    raise
            await to_thread.run_sync(partial(self.batches.close, stats, finished=True))
        finally:
            self.running.discard(edge.name)
            self._runs[edge.name] += 1
        return stats

    def _known_walk(self, edge: Edge) -> KnownFromLog | None:
        """What the edge's reader remembers, told the owner's head when the control vouches it."""
        remembers = edge.reader.remembers
        if remembers is None or not self.quiet.enabled:
            return None
        known = self._known.setdefault(edge.walk or edge.name, remembers())
        faulted = self.faults is not None and bool(self.faults.listed())
        known.head = None if faulted else self.heads.get(edge.owner)
        return known

    async def _read(
        self,
        edge: Edge,
        reader: SourceReader | KernelReader,
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
            position = await to_thread.run_sync(self.batches.position, edge)
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
                        apply = partial(
                            self.batches.apply,
                            edge,
                            Page(page.changes),
                            stats,
                            now=self.clock.now(),
                            position=str(since),
                        )
                        await to_thread.run_sync(apply)
                        position = str(since)
                    if left is not None:  # the owner's later changes wait for their moment
                        stats.next_change_at = left
                        return
        except CursorExpiredError:
            stats.relisted = True
            await self._snapshot(edge, reader, stats)

    async def _updated_since(self, edge: Edge, reader: SourceReader, stats: CopyStats) -> None:
        position = await to_thread.run_sync(self.batches.position, edge)
        if position is None or position.isdigit():  # never read, or read by feed before
            await self._snapshot(edge, reader, stats)
            return
        started = self.clock.now()
        since = datetime.fromisoformat(position) - edge.overlap
        async for page in self._delivered(edge, reader.pages(since)):
            stats.pages += 1
            stats.fetched += len(page.records)
            apply = partial(self.batches.apply, edge, page, stats, now=self.clock.now())
            await to_thread.run_sync(apply)
        finish = partial(
            self.batches.finish, edge, stats, started=started, position=None, full=False
        )
        await to_thread.run_sync(finish)

    async def _snapshot(self, edge: Edge, reader: SourceReader, stats: CopyStats) -> None:
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
            apply = partial(self.batches.apply, edge, page, stats, now=now, relisting=True)
            await to_thread.run_sync(apply)
        # a feed edge resumes from the head seen when listing began, so nothing between is lost
        position = str(head or 0) if edge.mechanism is Mechanism.FEED else None
        finish = partial(
            self.batches.finish,
            edge,
            stats,
            started=started,
            position=position,
            full=True,
            seen=seen,
        )
        await to_thread.run_sync(finish)


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
