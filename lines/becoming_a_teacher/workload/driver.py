"""The workload run against a line: its events drawn for a span, then fired moment by moment."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta

import httpx

from lines.becoming_a_teacher.topology import record_system_for
from lines.becoming_a_teacher.workload.actions import (
    Decisions,
    Gias,
    Handler,
    Mentoring,
    People,
    Publish,
    Sender,
)
from lines.becoming_a_teacher.workload.planner import Planned, plan
from lines.becoming_a_teacher.workload.reading import read_line, read_trainees
from lines.becoming_a_teacher.workload.spec import FOLLOW_UPS, MONTHS, OWNERS, Workload
from lines.becoming_a_teacher.workload.state import LineState

WORK_STARTS, WORK_ENDS = 9, 17


class WorkloadDriver:
    """Performs a workload's events through the owners' APIs, each at its simulated moment."""

    def __init__(
        self,
        workload: Workload,
        clients: Mapping[str, httpx.AsyncClient],
        api_token: str,
        *,
        seed: int,
        start: datetime,
        end: datetime,
    ) -> None:
        self.workload, self.clients, self.start, self.end = workload, clients, start, end
        self.seed = seed
        # the events' own choices, apart from the plan's draws
        self.rng = random.Random(f"events of {seed}")
        self.sender = Sender(clients, api_token)
        self.state = LineState()
        self.due: list[Planned] = []
        self.sequence = 0  # the last event's seq: follow-ups come after every planned one
        self.people = People(self.sender, self.state, self.rng)
        self.decisions = Decisions(self.sender, self.state)
        self.handlers: dict[str, Handler] = {
            **Publish(self.sender, self.state, self.rng).handlers(),
            **Gias(self.sender, self.state, self.rng).handlers(),
            **self.people.handlers(),
            **Mentoring(self.sender, self.state, self.rng).handlers(),
        }

    @property
    def counts(self) -> Counter[str]:
        return self.sender.counts

    @property
    def failures(self) -> Counter[str]:
        return self.sender.failures

    async def prepare(self) -> None:
        """Read what the seeded line holds, then draw every event of the span."""
        await read_line(self.clients, self.sender.headers, self.state)
        kinds = [k for k in self.workload.events if OWNERS[k] in self.clients]
        self.due = plan(
            self.workload, self.state.seeded, kinds, random.Random(self.seed), self.start, self.end
        )
        self.sequence = len(self.due)

    def next_at(self) -> datetime | None:
        return self.due[0].at if self.due else None

    def targets_at(self, moment: datetime) -> set[str]:
        # the plan is a heap: only the events due by `moment` are visited
        found: set[str] = set()
        stack = [0]
        while stack:
            at = stack.pop()
            if at < len(self.due) and self.due[at].at <= moment:
                found.add(OWNERS[self.due[at].kind])
                stack += [2 * at + 1, 2 * at + 2]
        return found

    async def fire(self, moment: datetime) -> int:
        """Perform every event due by `moment`, those of one moment and kind together; how many
        were performed or refused (a follow-up that finds nothing to do is neither)."""
        before = self.counts.total() + self.failures.total()
        while self.due and self.due[0].at <= moment:
            first = heapq.heappop(self.due)
            group = [first]
            while self.due and (self.due[0].at, self.due[0].kind) == (first.at, first.kind):
                group.append(heapq.heappop(self.due))
            await self._perform(first.kind, group, first.at)
        return self.counts.total() + self.failures.total() - before

    async def _perform(self, kind: str, group: list[Planned], at: datetime) -> None:
        if kind in FOLLOW_UPS:
            for event in group:
                await self._follow_up(event)
            return
        if OWNERS[kind] == "register":
            await read_trainees(self.clients["register"], self.sender.headers, self.state, at)
        await self.handlers[kind](len(group), at)
        for id, provider, submitted in self.people.submitted:
            self._decide_later(id, provider, submitted)
        self.people.submitted.clear()

    def _push(self, at: datetime, kind: str, target: tuple[str, ...]) -> None:
        if at < self.end:
            self.sequence += 1
            heapq.heappush(self.due, Planned(at, self.sequence, kind, target))

    def _after(self, moment: datetime, days: tuple[float, float]) -> datetime:
        """Some days later, to the minute; after working hours, the next morning."""
        later = moment + timedelta(days=self.rng.uniform(*days))
        later = later.replace(second=0, microsecond=0)
        if later.hour >= WORK_ENDS:
            later = (later + timedelta(days=1)).replace(hour=WORK_STARTS, minute=0)
        return max(later, later.replace(hour=WORK_STARTS, minute=0))

    def _decide_later(self, id: str, provider: str, submitted: datetime) -> None:
        rules = self.workload.decisions
        if "manage" not in self.clients:
            return
        roll = self.rng.random()
        # a university's student record system decides on its own; the candidate still answers
        if record_system_for(provider) in self.clients and self._university(provider):
            self._push(
                self._after(submitted, rules.decide_after_days), "offer_accepted", (id, "check")
            )
            return
        if roll < rules.offer_share:
            self._push(self._after(submitted, rules.decide_after_days), "offer_made", (id,))
        elif roll < rules.offer_share + rules.reject_share:
            self._push(
                self._after(submitted, rules.decide_after_days), "application_rejected", (id,)
            )

    def _university(self, provider: str) -> bool:
        return self.state.providers.get(provider, {}).get("provider_type") == "university"

    async def _follow_up(self, event: Planned) -> None:
        rules = self.workload.decisions
        id = event.target[0]
        if event.kind in ("offer_accepted", "offer_declined"):
            decided_elsewhere = len(event.target) > 1
            answer = (
                "offer_accepted" if self.rng.random() < rules.accept_share else "offer_declined"
            )
            accepted = await self.decisions.answer(answer, id, if_offered=decided_elsewhere)
            if accepted and not decided_elsewhere and self.rng.random() < rules.recruit_share:
                self._push(self._recruited_at(event.at), "conditions_met", (id,))
            return
        made = await self.decisions.decide(event.kind, id)
        if made and event.kind == "offer_made":
            self._push(self._after(event.at, rules.accept_after_days), "offer_accepted", (id,))

    def _recruited_at(self, accepted: datetime) -> datetime:
        """Conditions are met from the cycle's `recruit_from` month on."""
        rules = self.workload.decisions
        cycle_start = accepted.year if accepted.month >= 10 else accepted.year - 1
        month = MONTHS.index(rules.recruit_from)
        number = (month + 9) % 12 + 1
        opens = accepted.replace(
            year=cycle_start if number >= 10 else cycle_start + 1, month=number, day=1
        )
        return self._after(max(accepted, opens), rules.recruit_after_days)
