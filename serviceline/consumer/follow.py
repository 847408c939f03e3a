"""A consumer following its owner's change feed (`feed@follow`) instead of polling it on a cron.

In realtime the follower is a task of the consumer's lifespan. It parks on the owner's long-poll
(`/feed/{entity}?since=&wait=`) from the edge's cursor, and applies the page the owner answers
with through the copier as a scheduled run applies its pages: the same batches, commits and
applied log, so its lag is measured as every other edge's is. A read or an apply that fails is
logged as a failed run; the follower waits (a tenth of a second, doubling up to five) and parks
again. It never stops the service, and the lifespan cancels it at shutdown.

Under a manual clock nothing may happen between two moves of the clock: a study runs the same
workload twice and compares the results field by field, and a watcher beside the clock would
apply a write wherever the process scheduler let it, before one audit or after it. So there a
followed feed is a job of the clock's, driven by nothing but the owner's log and the clock's
moves. At the start of each advance of the consumer, it looks at its owner from the cursor,
unless the line's control knows the owner's log has not moved since the last look; a change
made by the consumer's moment is applied then, and a later one (its owner ahead, or the line's
control stopping this clock short of a moment its owner acts at) makes the job due at the very
moment it was made, where the run takes every change made by then and none after. So each change
reaches the copy at the moment it was made, or at the consumer's clock if that was past it
already, and two runs of one workload see the same runs with the same results. A look that
fails is a failed run of the job, retried with the edge's back-off as a scheduled run is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from serviceline.consumer.copier import Copier
from serviceline.model.topology import Edge
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.scheduler import Job, RetryPolicy, Scheduler
from serviceline.runtime.settings import ClockMode

log = logging.getLogger("serviceline.consumer.follow")
# seconds one long-poll parks for: the owner allows up to 60, and a stopping owner answers its
# parked readers before supervisord's 10 s are up
WAIT = 8.0
FIRST_BACKOFF = 0.1
LONGEST_BACKOFF = 5.0


@dataclass
class Follower:
    """One followed edge of a consumer: its job on the clock, and in realtime its task."""

    copier: Copier
    scheduler: Scheduler
    clock: SimulatedClock
    edge: Edge
    # manual clock: when the owner made the first change past the cursor, if one is known
    next_change: datetime | None = None
    # manual clock: the owner may have written since the last look
    looking: bool = False
    # the owner's head as the line's control knew it at the last look (None: not known)
    seen_head: int | None = None
    # realtime: failed runs in a row, which the wait before the next one doubles with
    failures: int = 0

    def job(self) -> Job:
        if self.clock.mode is ClockMode.REALTIME:
            # the task runs it; the clock never does, though a `sync` may ask for a run now
            return Job(self.edge.name, None, self._run_all, visible=False)
        return Job(
            self.edge.name,
            None,
            self.run_due,
            due=self.due,
            visible=False,
            retry=RetryPolicy(self.edge.retries),
            prepare=self.prepare,
            exact=True,
        )

    # the manual clock's job

    def prepare(self) -> None:
        """An advance begins: look at the owner, unless its log is known not to have moved."""
        known = self.copier.heads.get(self.edge.owner)
        if known is None or known != self.seen_head:
            self.looking = True

    def due(self) -> datetime | None:
        if self.looking:
            return self.clock.now()
        return self.next_change

    async def run_due(self) -> dict[str, Any] | None:
        """Apply what the owner logged by the consumer's moment; learn when the next came."""
        moment = self.clock.now()
        head = self.copier.heads.get(self.edge.owner)
        # cleared first: a look that fails leaves the job to its retry, not due again at once
        self.looking, self.next_change = False, None
        followed = await self.copier.follow(self.edge.name, until=moment)
        self.seen_head = head
        # after `moment` by the copier's cut, so the job is never due again where it ran
        self.next_change = followed.next_change_at
        return None if followed.stats is None else followed.stats.result()

    # realtime

    async def _run_all(self) -> dict[str, Any]:
        return (await self.copier.run(self.edge.name)).result()

    async def _park(self) -> dict[str, Any] | None:
        followed = await self.copier.follow(self.edge.name, wait=WAIT)
        return None if followed.stats is None else followed.stats.result()

    async def follow_forever(self) -> None:
        """Park on the owner's feed, apply what it answers with, and park again, until cancelled."""
        while True:
            try:
                outcome = await self.scheduler.beside(self.edge.name, self._park)
                worked = outcome.ok
            except Exception:  # the follower outlives whatever went wrong, and says so
                log.exception("following %s", self.edge.name)
                worked = False
            if worked:
                self.failures = 0
                continue
            self.failures += 1
            await asyncio.sleep(min(FIRST_BACKOFF * 2 ** (self.failures - 1), LONGEST_BACKOFF))
