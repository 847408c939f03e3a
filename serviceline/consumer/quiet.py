"""Polls the simulation need not make: an edge whose last real run found nothing, asked again
when nothing that run read has moved, must find nothing again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from serviceline.consumer.batches import CopyStats
from serviceline.consumer.tables import CopyCursor, CopyTarget
from serviceline.model.topology import KERNEL_READER, Edge, Mechanism
from serviceline.owner.feed import head
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import readonly


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


class QuietPolls:
    """The runs of a consumer's edges that found nothing, and whether a run now would repeat one."""

    def __init__(
        self,
        *,
        engine: Engine,
        clock: SimulatedClock,
        targets: Mapping[str, CopyTarget],
        enabled: bool = True,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.targets = targets
        self.enabled = enabled
        # by edge and whether the run is a full one
        self._quiet: dict[tuple[str, bool], QuietRun] = {}
        self._edits: Counter[str] = Counter()

    def edited(self, edge_name: str) -> None:
        """A copy of the edge was edited here: its next snapshot may overwrite the edit."""
        self._edits[edge_name] += 1

    def look(
        self, edge: Edge, *, full: bool, owner_head: int | None, at: datetime | None = None
    ) -> Look:
        """What a run of the edge now, or at `at` if nothing runs before, would read."""
        position = self._position(edge)
        target = self.targets[edge.entity]
        if edge.mechanism is Mechanism.FEED and edge.reader is KERNEL_READER and not full:
            path = "follow" if position is None or position.isdigit() else "snapshot"
        elif edge.mechanism is Mechanism.UPDATED_SINCE and not full:
            path = "since" if position is not None and not position.isdigit() else "snapshot"
        else:
            path = "snapshot"
        if path == "follow" and position is None:
            path = "first"  # a first follow reads from 0: nothing to compare with
        own_head = None
        if path == "snapshot" and (
            target.wanted is not None or (edge.keep_referenced and target.referenced)
        ):
            with Session(readonly(self.engine)) as session:
                own_head = head(session)
        day = None
        if edge.reader.daily:
            day = ((at or self.clock.now()) - timedelta(days=1)).strftime("%Y%m%d")
        return Look(path, position, owner_head, own_head, day, self._edits[edge.name])

    def _position(self, edge: Edge) -> str | None:
        # read without the ORM, whose session costs more than the row: asked at every poll
        query = select(col(CopyCursor.position)).where(col(CopyCursor.edge) == edge.name)
        with readonly(self.engine).connect() as connection:
            position: str | None = connection.execute(query).scalar_one_or_none()
            return position

    def repeated(self, edge: Edge, *, full: bool, look: Look, faulted: bool) -> QuietRun | None:
        """The quiet run a run now would repeat, where the simulation may skip it."""
        quiet = self._quiet.get((edge.name, full))
        if not self.enabled or quiet is None or faulted or not look.repeats(quiet):
            return None
        return quiet

    def last(self, edge: Edge, *, full: bool) -> QuietRun:
        return self._quiet[(edge.name, full)]

    def forget(self, edge: Edge, *, full: bool) -> None:
        """A run of the edge is under way: what it finds replaces what the last one found."""
        self._quiet.pop((edge.name, full), None)

    def remember(self, edge: Edge, *, full: bool, look: Look, stats: CopyStats) -> None:
        """A real run that found nothing, having read an owner head the control vouched for."""
        if look.owner_head is not None and stats.found_nothing():
            self._quiet[(edge.name, full)] = QuietRun(look, stats)
