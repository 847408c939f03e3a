"""What the dashboard knows of the line: who answers, the clock, the latest drift, what it does.

Drift is checked again only when something a check would see has moved (an owner's change log,
a consumer's copy cursors), after the dashboard moves the clock or runs an edge, and at least
every `recheck_seconds` while a page is open: an open page costs the line little. While
Prometheus scrapes /metrics the board also measures every change's lag with each check, pulling
only the logs' new rows; a dashboard no one scrapes never pulls them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from anyio import to_thread

from serviceline.audit.drift import (
    Auditor,
    DriftReport,
    history_sample,
    read_history,
    record_history,
)
from serviceline.audit.lag import LagCollector, LagReport
from serviceline.dashboard.layout import Layout, layout
from serviceline.dashboard.settings import DashboardSettings
from serviceline.model.topology import Topology
from serviceline.runtime.clock import ClockError
from serviceline.runtime.upstream import UpstreamError, bearer
from serviceline.stack.control import ControlError, LineControl
from serviceline.stack.supervision import ServiceState, SupervisionError, Supervisor

# how long after a page last asked the dashboard keeps looking at the line
WATCH_SECONDS = 30.0
FAILURES = (httpx.HTTPError, ControlError, ClockError, UpstreamError)

Work = Callable[[LineControl], Awaitable[str]]


@dataclass(frozen=True)
class Outcome:
    text: str
    ok: bool


@dataclass
class History:
    """The drift history the auditor keeps in the state folder, read again only when it grows."""

    state_dir: Path
    _samples: list[dict[str, Any]] = field(default_factory=list)
    _size: int = -1

    def samples(self) -> list[dict[str, Any]]:
        path = self.state_dir / "drift-history.jsonl"
        size = path.stat().st_size if path.exists() else 0
        if size != self._size:
            self._samples, self._size = read_history(self.state_dir), size
        return self._samples

    def add(self, report: DriftReport) -> None:
        """Record the report, unless the last sample already says the same at the same time."""
        samples = self.samples()
        if not samples or _figures(samples[-1]) != _figures(history_sample(report)):
            record_history(report, self.state_dir)


def _figures(sample: dict[str, Any]) -> str:
    return json.dumps(sample, sort_keys=True)


@dataclass
class Board:
    settings: DashboardSettings
    topology: Topology
    clients: Mapping[str, httpx.AsyncClient]
    running: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    # each service as the line's supervisor sees it; empty where no supervisor runs it
    supervised: dict[str, ServiceState] = field(default_factory=dict)
    clocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: DriftReport | None = None
    # every change's fate on every edge, measured with the latest check while /metrics is read
    lag: LagReport | None = None
    problem: str | None = None  # why the line could not be read
    comparisons_problem: str | None = None
    doing: str | None = None  # the action running now
    checking: bool = False  # drift is being checked now
    outcome: Outcome | None = None  # how the last action ended
    history: History = field(init=False)
    _seen: str | None = None  # what the line looked like at the last check
    _checked: float = 0.0
    _watched: float = 0.0
    _scraped: float | None = None
    _logs: LagCollector | None = None
    _looking: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _pictures: dict[tuple[tuple[str, int], ...], Layout] = field(default_factory=dict)
    _auditor: Auditor | None = None

    def __post_init__(self) -> None:
        self.history = History(self.settings.state_dir)

    @property
    def now(self) -> datetime | None:
        times = [datetime.fromisoformat(c["now"]) for c in self.clocks.values()]
        return max(times, default=None)

    @property
    def mode(self) -> str:
        return next((c["mode"] for c in self.clocks.values()), "manual")

    def picture(self, lines: Mapping[str, int]) -> Layout:
        """The line laid out with each copy's row as tall as its text, once per set of heights."""
        key = tuple(sorted(lines.items()))
        if key not in self._pictures:
            self._pictures[key] = layout(self.topology, lines)
        return self._pictures[key]

    def control(self) -> LineControl:
        return LineControl(self.running, self.settings.admin_token, self.topology)

    def auditor(self) -> Auditor:
        """One auditor while the same services answer: it gives again what nobody wrote since."""
        kept = self._auditor
        if kept is None or kept.clients != self.running:
            kept = self._auditor = Auditor(
                clients=self.running,
                token=self.settings.auditor_token,
                topology=self.topology,
                bisect=self.settings.bisect,
                remember=True,
            )
        return kept

    def _reading(self) -> dict[str, str]:
        """The dashboard reads with the auditor's token; only its buttons use the admin's."""
        return bearer(self.settings.auditor_token)

    def watched(self) -> None:
        self._watched = time.monotonic()

    def scraped(self) -> None:
        """/metrics was read: keep looking at the line, and measure its lag from now on."""
        self._scraped = time.monotonic()
        self.watched()

    async def watch(self) -> None:
        """Look at the line now, then every `poll_seconds` while a page is open."""
        looking = True
        while True:
            if looking:
                try:
                    await self.look()
                except Exception as error:
                    # the pages show it; the loop must outlive any one unreadable answer
                    self.problem = f"could not read the line: {error!r}"
            await asyncio.sleep(self.settings.poll_seconds)
            looking = time.monotonic() - self._watched < WATCH_SECONDS

    async def look(self, *, check: bool = False) -> None:
        """Who answers and what their clocks say; drift again if the line may have changed."""
        async with self._looking:
            try:
                self.running = await self._answering()
                self.supervised = await to_thread.run_sync(self._supervised)
                # the clock's GET is a read: the auditor's token is enough
                reading = LineControl(self.running, self.settings.auditor_token, self.topology)
                self.clocks = await reading.clocks()
                if not self.running:
                    self.problem = "no service of the line answers: is it running?"
                    return
                if self.doing is not None:
                    return
                # a clock moved from anywhere ages every lag: the figures must be taken again
                seen = f"{self.now} {await self._fingerprint()}"
                due = time.monotonic() - self._checked > self.settings.recheck_seconds
                if check or due or seen != self._seen or self.report is None:
                    self.checking = True
                    try:
                        report = await self._audit()
                    finally:
                        self.checking = False
                    self.report, self._seen, self._checked = report, seen, time.monotonic()
                    self.history.add(report)
                    if self._scraped is not None:
                        await self._measure(reading)
                elif self._scraped is not None and self.lag is None:
                    await self._measure(reading)
                self.problem = None
            except FAILURES as error:
                self.problem = f"could not read the line: {error}"

    async def _measure(self, reading: LineControl) -> None:
        """Every change's lag up to the clock's time, from the logs' rows pulled so far."""
        if self._logs is None:
            self._logs = LagCollector(reading)
        self._logs.control = reading  # the services answering now
        await self._logs.collect()
        until = self.now
        if until is not None:
            self.lag = await to_thread.run_sync(self._logs.report, until)

    async def _audit(self) -> DriftReport:
        """Every edge whose ends are running, each on its own: one that cannot be read (an owner
        with nothing published yet) is skipped with the reason, and the others still shown."""
        auditor = self.auditor()
        report = DriftReport(await self.control().now(), [], [], [])
        for edge in self.topology.edges:
            down = [name for name in (edge.owner, edge.consumer) if name not in self.running]
            try:
                if down:
                    report.skipped.append(
                        {"edge": edge.name, "reason": f"{down[0]} is not running"}
                    )
                else:
                    report.edges.append(await auditor.edge(edge))
            except FAILURES as error:
                report.skipped.append({"edge": edge.name, "reason": f"could not check: {error}"})
        try:
            report.comparisons = await auditor.comparisons()
            self.comparisons_problem = None
        except FAILURES as error:
            self.comparisons_problem = f"could not compare them: {error}"
        return report

    async def _answering(self) -> dict[str, httpx.AsyncClient]:
        async def healthy(client: httpx.AsyncClient) -> bool:
            try:
                return (await client.get("/health", timeout=2)).status_code == 200
            except httpx.TransportError:
                return False

        answers = await asyncio.gather(*(healthy(c) for c in self.clients.values()))
        return {n: c for (n, c), ok in zip(self.clients.items(), answers, strict=True) if ok}

    def _supervised(self) -> dict[str, ServiceState]:
        try:
            return Supervisor(self.settings.state_dir).states()
        except SupervisionError:
            return {}  # a line in containers, say: their engine restarts them

    async def _fingerprint(self) -> str:
        """Every owner's change-log head, every consumer's copy cursors: drift moves with them."""

        async def head(name: str) -> Any:
            entity = self.topology.owned_by(name)[0].name
            response = await self.running[name].get(
                f"/records/{entity}", params={"limit": 1}, headers=self._reading()
            )
            return response.json().get("head") if response.is_success else response.status_code

        async def cursors(name: str) -> Any:
            response = await self.running[name].get("/admin/edges", headers=self._reading())
            return response.json() if response.is_success else response.status_code

        names = sorted(self.running)
        owners = [n for n in names if self.topology.owned_by(n)]
        consumers = [n for n in names if self.topology.edges_into(n)]
        found = await asyncio.gather(*map(head, owners), *map(cursors, consumers))
        return json.dumps([owners, consumers, found], sort_keys=True, default=str)

    async def fresh(self) -> None:
        """Look at the line before a page is drawn, waiting `fresh_seconds` at most for it: a
        page drawn before the check ends says how old its figures are."""
        task = asyncio.create_task(self.look())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.settings.fresh_seconds)

    def start(self, doing: str, work: Work) -> bool:
        """Run one action at a time in the background; the pages show it while it runs."""
        if self.doing is not None:
            self.outcome = Outcome(f"Still {self.doing}: try again when it has finished.", False)
            return False
        self.doing = doing
        task = asyncio.create_task(self._act(doing, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _act(self, doing: str, work: Work) -> None:
        try:
            self.outcome = Outcome(await work(self.control()), True)
        except FAILURES as error:
            self.outcome = Outcome(f"{doing.capitalize()} failed: {error}", False)
        finally:
            self.doing = None
        await self.look(check=True)

    async def idle(self) -> None:
        """Wait for the action running now, if any, and the check after it."""
        await asyncio.gather(*list(self._tasks))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
