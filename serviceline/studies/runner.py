"""Runs a study: a real line through its span on the simulated clock, sampled as it goes."""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx
from anyio import to_thread

from serviceline.audit.drift import Auditor
from serviceline.model.lines import current_line
from serviceline.model.topology import Topology
from serviceline.runtime.clock import parse_duration
from serviceline.runtime.upstream import UpstreamError, bearer
from serviceline.scenarios.runner import LineOptions
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import START_TIMEOUT, LineConfig, RunningLine, start_line
from serviceline.studies.spec import Arm, CalendarFault, Study


class StudyRunError(RuntimeError):
    """The study cannot go on as written."""


class EventSource(Protocol):
    """What drives changes through the owners' APIs (a line's Workloads.events)."""

    @property
    def counts(self) -> Counter[str]: ...

    @property
    def failures(self) -> Counter[str]: ...

    async def prepare(self) -> None: ...

    def next_at(self) -> datetime | None: ...

    def targets_at(self, moment: datetime) -> set[str]: ...

    async def fire(self, moment: datetime) -> int: ...


class LagFigures(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class LagSource(Protocol):
    """What measures each change's way along each edge (serviceline.audit.lag's LagCollector)."""

    async def collect(self) -> None: ...

    def report(self, until: datetime, *, since: datetime | None = None) -> LagFigures: ...


@dataclass
class StudyLine:
    """The running line a study drives, as the event and lag sources are built from it."""

    study: Study
    topology: Topology
    # every service's client, for the sources; `control` and `auditor` see those running
    clients: dict[str, httpx.AsyncClient]
    running: dict[str, httpx.AsyncClient]
    control: LineControl
    auditor: Auditor
    api_token: str
    start: datetime
    end: datetime
    samples: list[Sample] = field(default_factory=list)


@dataclass(frozen=True)
class Sources:
    """How a study builds its event source and its lag source once its line runs."""

    events: Callable[[StudyLine], EventSource]
    lag: Callable[[StudyLine], LagSource]


@dataclass
class Sample:
    """Drift by class on every audited edge at one moment, and what could not be audited."""

    at: datetime
    edges: dict[str, dict[str, Any]]
    comparisons: dict[str, dict[str, int]]
    unaudited: dict[str, str]


@dataclass(frozen=True)
class Window:
    fault: CalendarFault
    begins: datetime
    ends: datetime


@dataclass
class StudyRun:
    """Everything a study measured: what results.json is written from."""

    study: Study
    arm: Arm
    start: datetime
    end: datetime
    samples: list[Sample]
    lag: dict[str, Any]
    events: dict[str, dict[str, int]]
    jobs: dict[str, dict[str, int]]
    windows: list[Window]
    elapsed_seconds: float
    # of the elapsed: starting and seeding the line, and auditing its drift samples
    setup_seconds: float = 0.0
    sample_seconds: float = 0.0


# called after each step with the simulated moment reached, the span's start and its end
Progress = Callable[[datetime, datetime, datetime], None]


class Line(Protocol):
    """What a study may do to its line's processes beside driving it: stop and start them."""

    def stop_service(self, name: str, *, kill: bool = False) -> None: ...

    def start_service(self, name: str, timeout: float = START_TIMEOUT) -> None: ...


async def advance_and_fire(
    control: LineControl, events: EventSource, moment: datetime, *, whole: bool
) -> list[dict[str, Any]]:
    """Bring the line to `moment` and perform the events due by then: the jobs that ran.

    Only the services the events write to need to be there (and those they command); with
    `whole`, as for a sample that audits every clock, every service is.
    """
    due = events.next_at()
    fires = due is not None and due <= moment
    targets = events.targets_at(moment) if fires else set()
    ran = await control.advance(to=moment, only=None if whole or not targets else targets)
    if fires:
        await events.fire(moment)
        control.touched(targets)
    return ran


class StudyRunner:
    """Moves the line from event to event, sample to sample, fault to fault, until the end."""

    def __init__(
        self,
        line: StudyLine,
        processes: Line,
        events: EventSource,
        lag: LagSource,
        arm: Arm,
        *,
        admin_token: str,
        progress: Progress | None = None,
    ) -> None:
        self.line = line
        self.processes = processes
        self.events = events
        self.lag = lag
        self.arm = arm
        self.admin_token = admin_token
        self.progress = progress or (lambda _moment, _start, _end: None)
        self.every = parse_duration(line.study.sample_every)
        self.windows = sorted(
            (
                Window(fault, begins, ends)
                for fault in arm.faults
                for begins, ends in fault.windows(line.start, line.end)
            ),
            key=lambda w: w.begins,
        )
        # the services stopped by a "down" window, until it ends
        self.down: dict[str, Window] = {}
        self.jobs: dict[str, Counter[str]] = {}
        # wall seconds spent auditing the samples so far
        self.sample_seconds = 0.0

    async def run(self) -> None:
        line = self.line
        await self.events.prepare()
        next_sample = line.start
        moment = line.start
        while True:
            due = self.events.next_at()
            moments = [line.end, next_sample, *self._fault_changes(moment)]
            if due is not None:
                moments.append(max(due, moment))
            moment = min(moments)
            sampling = moment >= next_sample or moment >= line.end
            whole = sampling or self._faults_change_at(moment)
            self._tally(await advance_and_fire(line.control, self.events, moment, whole=whole))
            await self._faults_at(moment)
            if sampling:
                await self._sample(moment)
                next_sample = moment + self.every
            self.progress(moment, line.start, line.end)
            if moment >= line.end:
                return

    def _faults_change_at(self, moment: datetime) -> bool:
        """Whether a fault begins or ends at `moment`: every clock is brought there first."""
        begins = any(w.begins == moment for w in self.windows)
        return begins or any(w.ends <= moment for w in self.down.values())

    def _fault_changes(self, now: datetime) -> list[datetime]:
        starts = [w.begins for w in self.windows if w.begins > now]
        return [*starts[:1], *(w.ends for w in self.down.values())]

    async def _faults_at(self, moment: datetime) -> None:
        for name, window in list(self.down.items()):
            if window.ends <= moment:
                await self._restart(name, moment)
        for window in self.windows:
            if window.begins == moment:
                await self._begin(window)

    async def _begin(self, window: Window) -> None:
        fault = window.fault
        name = fault.service
        if name in self.down:
            return  # down already, from another window
        if fault.kind == "down":
            self.down[name] = window
            del self.line.running[name]
            await to_thread.run_sync(partial(self.processes.stop_service, name))
            return
        body: dict[str, Any] = {"kind": fault.kind, "until": window.ends.isoformat()}
        for option in ("status", "seconds", "edge"):
            if getattr(fault, option) is not None:
                body[option] = getattr(fault, option)
        answer = await self.line.clients[name].post(
            "/admin/faults", json=body, headers=self._admin()
        )
        if not answer.is_success:
            raise StudyRunError(f"faults: {name} refused {fault.label()}: {answer.text[:300]}")

    async def _restart(self, name: str, moment: datetime) -> None:
        del self.down[name]
        await to_thread.run_sync(self.processes.start_service, name)
        self.line.running[name] = self.line.clients[name]
        # a restarted service resumes from the time it stopped and catches up on its own jobs
        answer = await self.line.clients[name].post(
            "/admin/clock/advance", json={"to": moment.isoformat()}, headers=self._admin()
        )
        answer.raise_for_status()
        self._tally([{"service": name, **job} for job in answer.json()["ran"]])

    def _admin(self) -> dict[str, str]:
        return bearer(self.admin_token)

    def _tally(self, ran: Sequence[Mapping[str, Any]]) -> None:
        for job in ran:
            counts = self.jobs.setdefault(f"{job['service']} {job['job']}", Counter())
            counts["runs"] += 1
            counts["failed"] += not job["ok"]

    async def _sample(self, moment: datetime) -> None:
        began = time.monotonic()
        try:
            await self._audit_sample(moment)
        finally:
            self.sample_seconds += time.monotonic() - began

    async def _audit_sample(self, moment: datetime) -> None:
        running = set(self.line.running)
        edges = [e for e in self.line.topology.edges if {e.owner, e.consumer} <= running]
        sample = Sample(moment, {}, {}, {})
        sample.unaudited = {
            e.name: f"{e.owner if e.owner not in running else e.consumer} is down"
            for e in self.line.topology.edges
            if e not in edges and {e.owner, e.consumer} <= set(self.line.clients)
        }
        auditor = self.line.auditor
        for edge in edges:
            try:
                found = await auditor.edge(edge)
            except UpstreamError as error:
                sample.unaudited[edge.name] = f"{error.service} answered {error.status}"
                continue
            sample.edges[edge.name] = {
                "counts": found.counts,
                "lost_local_edits": found.lost_local_edits,
                "lag_changes": found.lag.changes if found.lag else None,
                "oldest_age_seconds": found.lag.oldest_age_seconds if found.lag else None,
            }
        if not self.down:
            with contextlib.suppress(UpstreamError, httpx.TransportError):
                sample.comparisons = {c.name: c.counts for c in await auditor.comparisons()}
        self.line.samples.append(sample)
        await self.lag.collect()

    def tallies(self) -> dict[str, dict[str, int]]:
        return {name: dict(counts) for name, counts in sorted(self.jobs.items())}


@contextlib.asynccontextmanager
async def study_line(
    study: Study, arm: Arm, options: LineOptions, home: Path
) -> AsyncIterator[tuple[StudyLine, RunningLine]]:
    """A fresh line of the study's services, seeded, stopped again when the study ends."""
    shutil.rmtree(home, ignore_errors=True)
    names = study.needed()
    config = LineConfig(
        home,
        host=options.host,
        admin_token=options.admin_token,
        api_token=options.api_token,
        auditor_token=options.auditor_token,
        port_offset=options.port_offset,
        edge_overrides=arm.applied,
        service_settings={name: {"clock_start": study.began().isoformat()} for name in names},
    )
    starting = functools.partial(start_line, topology=current_line().topology)
    running = await to_thread.run_sync(starting, config, names)
    clients = {
        name: httpx.AsyncClient(base_url=config.url(running.topology.service(name)), timeout=300)
        for name in names
    }
    up = dict(clients)
    try:
        control = LineControl(up, options.admin_token, running.topology)
        seed_line = current_line().seed
        await seed_line(clients, control, options.api_token, study.size, study.seed)
        start = await control.now()
        line = StudyLine(
            study,
            running.topology,
            clients,
            up,
            control,
            Auditor(
                clients=up,
                token=options.auditor_token,
                topology=running.topology,
                remember=True,
            ),
            options.api_token,
            start,
            start + (study.ends() - study.began()),
        )
        yield line, running
    finally:
        for client in clients.values():
            await client.aclose()
        await to_thread.run_sync(running.stop)


async def run_study(
    study: Study,
    arm: Arm,
    options: LineOptions,
    sources: Sources,
    progress: Progress | None = None,
) -> StudyRun:
    began = time.monotonic()
    home = options.state_dir / "studies" / "lines" / arm.name
    async with study_line(study, arm, options, home) as (line, running):
        setup = time.monotonic() - began
        events = sources.events(line)
        lag = sources.lag(line)
        runner = StudyRunner(
            line, running, events, lag, arm, admin_token=options.admin_token, progress=progress
        )
        await runner.run()
        return StudyRun(
            study=study,
            arm=arm,
            start=line.start,
            end=line.end,
            samples=line.samples,
            # the changes of the study's span, not the seed's
            lag=lag.report(line.end, since=line.start).to_json(),
            events={"counts": dict(events.counts), "failures": dict(events.failures)},
            jobs=runner.tallies(),
            windows=runner.windows,
            elapsed_seconds=round(time.monotonic() - began, 1),
            setup_seconds=round(setup, 1),
            sample_seconds=round(runner.sample_seconds, 1),
        )
