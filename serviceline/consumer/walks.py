"""One walk of an owner's API shared by the edges into a consumer that name the same walk.

The first of them to run at a moment of its schedule walks, applying its own entity's pages as
they arrive; the pages of the others wait, each with the requests that read it, and the run of
each sibling at that moment takes them instead of asking again. So a run costs the owner what
the real job costs, and each edge's run counts the requests that fetched its own entity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from croniter import croniter

from serviceline.consumer.readers import Page, Walked, Walker
from serviceline.model.topology import Edge
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.upstream import charge


@dataclass
class _Walk:
    # the schedule's moment the walk was made for, and the window it listed (None: everything)
    moment: datetime
    since: datetime | None
    # by entity, the pages no sibling has taken yet
    waiting: dict[str, list[Walked]] = field(default_factory=dict)


@dataclass
class SharedWalk:
    """What one edge reads of its walk group: the pages its own entity has in the walk."""

    walks: Walks
    edge: Edge
    walker: Walker

    def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        return self.walks.pages(self.edge, self.walker, updated_since)


class Walks:
    """The latest complete walk of each walk group into one consumer."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self._latest: dict[str, _Walk] = {}

    def share(self, edge: Edge, walker: Walker) -> SharedWalk:
        return SharedWalk(self, edge, walker)

    async def pages(
        self, edge: Edge, walker: Walker, since: datetime | None
    ) -> AsyncIterator[Page]:
        assert edge.walk is not None
        moment = self._moment(edge)
        latest = self._latest.get(edge.walk)
        if latest is not None and (latest.moment, latest.since) == (moment, since):
            taken = latest.waiting.pop(edge.entity, None)
            if taken is not None:
                for walked in taken:
                    charge(walked.traffic)
                    yield walked.page
                return
        walk = _Walk(moment, since, {e: [] for e in walker.entities if e != edge.entity})
        async for walked in walker.walk(since, walker.entities):
            if walked.entity == edge.entity:
                charge(walked.traffic)
                yield walked.page
            elif walked.entity in walk.waiting:
                walk.waiting[walked.entity].append(walked)
        # only a walk read to its end is shared: a run that stopped part way read too little
        self._latest[edge.walk] = walk

    def _moment(self, edge: Edge) -> datetime:
        """The moment of the edge's schedule this run belongs to: the latest at or before now."""
        now = self.clock.now()
        if edge.schedule is None:
            return now
        # a moment on the schedule is its own: croniter's get_prev is strictly before
        moment: datetime = croniter(edge.schedule, now + timedelta(microseconds=1)).get_prev(
            datetime
        )
        return moment
