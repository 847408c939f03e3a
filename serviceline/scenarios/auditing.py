"""The drift and lag of the watched edges and comparisons, audited after each step."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from serviceline.audit.drift import Auditor
from serviceline.audit.lag import LagCollector, latest_taken
from serviceline.model.lines import current_line
from serviceline.runtime.upstream import UpstreamError
from serviceline.scenarios.line import Line
from serviceline.scenarios.spec import Scenario


@dataclass(frozen=True)
class EdgeLag:
    changes: int | None
    oldest_age_seconds: float | None
    since_sync_seconds: float | None


@dataclass
class Audit:
    drift: dict[str, dict[str, int]]
    lag: dict[str, EdgeLag]
    unaudited: dict[str, str]


def watched(scenario: Scenario) -> list[str]:
    """What the scenario watches, then what its steps name besides."""
    named = {name for step in scenario.steps for name in step.audited()}
    return [*scenario.watched(), *sorted(named - set(scenario.watched()))]


class Audits:
    """The watched edges' audits, taken again only once the line has changed since the last."""

    def __init__(self, line: Line, names: Sequence[str]) -> None:
        self.line = line
        self.watched = list(names)
        self.auditor = Auditor(
            clients=line.running, token=line.tokens["auditor"], topology=line.topology
        )
        self.lag = LagCollector(line.control)
        # the last audit, and the line's count of changes it was taken at
        self.last: tuple[int, Audit] | None = None
        # each watched edge's drift when the story began: a line started elsewhere holds records
        # of its own (a seed, earlier runs), and a story's counts are what it adds to them
        self.baseline: dict[str, dict[str, int]] = {}

    async def now(self) -> Audit:
        """The watched edges and comparisons now, reusing the last audit if nothing moved."""
        if self.last is not None and self.last[0] == self.line.changes:
            return self.last[1]
        line = self.line
        now = await line.control.now()
        audit = Audit({}, {}, {})
        succeeded: dict[str, dict[str, datetime]] = {}
        copied = {edge.name for edge in line.topology.edges}
        for name in self.watched:
            if name in line.topology.conflicts():
                continue
            if name not in copied:
                gone = current_line().topology.edge(name)
                audit.unaudited[name] = f"{gone.consumer} keeps no copy: it reads {gone.owner} live"
                continue
            edge = line.topology.edge(name)
            down = [s for s in (edge.owner, edge.consumer) if s not in line.running]
            found = None
            if down:
                audit.unaudited[name] = f"{down[0]} is down"
            else:
                try:
                    found = await self.auditor.edge(edge)
                except UpstreamError as error:
                    audit.unaudited[name] = (
                        f"{error.service} keeps no copy"
                        if error.status == 404 and error.service == edge.consumer
                        else f"{error.service} answered {error.status}"
                    )
                except httpx.TransportError:
                    audit.unaudited[name] = "unreachable"
                else:
                    audit.drift[name] = found.counts
            since = None
            if edge.consumer in line.running and (edge.schedule is not None or edge.follow):
                if edge.consumer not in succeeded:
                    succeeded[edge.consumer] = await self._successes(edge.consumer)
                done = [
                    at
                    for job, at in succeeded[edge.consumer].items()
                    if job in (edge.name, f"{edge.name}:full")
                ]
                since = (now - max(done)).total_seconds() if done else None
            lag = found.lag if found is not None else None
            audit.lag[name] = EdgeLag(
                lag.changes if lag else None, lag.oldest_age_seconds if lag else None, since
            )
        wanted = [name for name in self.watched if name in line.topology.conflicts()]
        if wanted:
            try:
                compared = {c.name: c for c in await self.auditor.comparisons()}
            except (UpstreamError, httpx.TransportError) as error:
                reason = (
                    f"{error.service} answered {error.status}"
                    if isinstance(error, UpstreamError)
                    else "unreachable"
                )
                compared = {}
                audit.unaudited.update(dict.fromkeys(wanted, reason))
            for name in wanted:
                if name in compared:
                    audit.drift[name] = compared[name].counts
                else:
                    audit.unaudited.setdefault(name, "a service is down")
        self.last = (line.changes, audit)
        return audit

    async def _successes(self, service: str) -> dict[str, datetime]:
        answer = await self.line.call(service, "GET", "/admin/jobs", token="admin")
        answer.raise_for_status()
        return {
            job["name"]: datetime.fromisoformat(job["last_success_at"])
            for job in answer.json()
            if job["last_success_at"]
        }

    def own(self, name: str, drift: str) -> int:
        """How many of an edge's records were in this class before the story began."""
        return self.baseline.get(name, {}).get(drift, 0)

    @staticmethod
    def why(audit: Audit, name: str) -> str:
        return audit.unaudited.get(name, "not watched")

    async def waited_for(self, taken_from: int, observed: set[str], start: datetime) -> datetime:
        """When the owner committed the change a step waited for: the latest one made before
        the step began that a copy the step reads took in during it; else the step's start."""
        await self.lag.collect()
        taken = latest_taken(self.lag.logs, taken_from, observed, start, self.line.topology)
        return taken or start

    async def peak_lags(self, began: datetime, until: datetime) -> dict[str, float]:
        """Each edge's longest propagation in the run, from what its consumer applied and when:
        not only what the steps happened to sample."""
        await self.lag.collect()
        measured = self.lag.report(until, since=began).edges
        return {name: lag.stats.lags[-1] for name, lag in measured.items() if lag.stats.lags}
