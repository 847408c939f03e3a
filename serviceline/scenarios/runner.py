"""Runs a scenario against a line: every step, the drift after it, each check, a verdict."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx
from anyio import to_thread

from serviceline.clock import parse_duration
from serviceline.control import ControlError, LineControl
from serviceline.drift import Auditor
from serviceline.lag import LagCollector, latest_taken
from serviceline.launcher import LineConfig, RunningLine, start_line
from serviceline.scenarios.spec import (
    COMPARISONS,
    UNSETTLED,
    Advance,
    Bound,
    ClearFaults,
    Expect,
    Expectations,
    ExpireCursors,
    Fault,
    Note,
    Request,
    RunJob,
    Scenario,
    Start,
    Step,
    Stop,
    Sync,
    Until,
    Value,
    format_duration,
    lookup,
    substitute,
)
from serviceline.seed import seed_line
from serviceline.topology import LINE, Topology
from serviceline.upstream import UpstreamError

LAST_RUN = "last.json"
# how long a process killed on purpose may take to be seen gone
DEATH_WAIT = 10.0


class StepError(RuntimeError):
    """A step could not do what it says: the story cannot go on."""


class RunError(RuntimeError):
    """The scenario cannot run as asked."""


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


@dataclass(frozen=True)
class EdgeLag:
    changes: int | None
    oldest_age_seconds: float | None
    since_sync_seconds: float | None


@dataclass
class Entry:
    """One line of the timeline: where the clock stood after a step, and what it changed."""

    number: int
    at: datetime
    step: str
    changed: str
    drift: dict[str, dict[str, int]]
    lag: dict[str, EdgeLag]
    unaudited: dict[str, str]
    ok: bool | None = None
    checks: list[Check] = field(default_factory=list)
    took_seconds: float | None = None


@dataclass
class Result:
    scenario: str
    title: str
    verdict: str
    seed: int | None
    overrides: dict[str, str]
    settings: dict[str, dict[str, str]]
    services: list[str]
    timeline: list[Entry]
    failures: list[str]
    elapsed_seconds: float = 0.0
    # each edge's longest propagation, measured over its consumer's applied log
    peak_lag_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(asdict(self), default=_iso))
        if self.timeline:
            body["started_at"] = body["timeline"][0]["at"]
            body["ended_at"] = body["timeline"][-1]["at"]
        return body


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


@dataclass
class Audit:
    drift: dict[str, dict[str, int]]
    lag: dict[str, EdgeLag]
    unaudited: dict[str, str]


class Stack(Protocol):
    """The line a scenario drives: a client per running service, and what it may do to them."""

    clients: dict[str, httpx.AsyncClient]
    # the line as its settings run it: edges overridden, none for what a service reads live
    topology: Topology
    # a line started elsewhere: it may hold records the story's own clash with
    elsewhere: bool

    async def stop(self, name: str, *, kill: bool) -> None: ...

    async def start(self, name: str) -> None: ...

    async def reap(self) -> set[str]:
        """Services that have exited unasked, no longer among the clients."""
        ...


class ProcessStack:
    """A line the scenario started itself: it may stop, kill and restart its services."""

    def __init__(self, line: RunningLine) -> None:
        self.line = line
        self.topology = line.topology
        self.elsewhere = False
        self.clients: dict[str, httpx.AsyncClient] = {}

    def connect(self, name: str) -> None:
        url = self.line.config.url(self.line.topology.service(name))
        self.clients[name] = httpx.AsyncClient(base_url=url, timeout=300)

    async def _forget(self, name: str) -> None:
        await self.clients.pop(name).aclose()

    async def stop(self, name: str, *, kill: bool) -> None:
        await self._forget(name)
        await to_thread.run_sync(partial(self.line.stop_service, name, kill=kill))

    async def start(self, name: str) -> None:
        await to_thread.run_sync(self.line.start_service, name)
        self.connect(name)

    async def reap(self) -> set[str]:
        gone = set(self.line.exited()) & set(self.clients)
        for name in gone:
            await self._forget(name)
        return gone

    async def close(self) -> None:
        for name in list(self.clients):
            await self._forget(name)


class AttachedStack:
    """A line someone else started: driven and audited, never stopped or started from here."""

    def __init__(self, clients: dict[str, httpx.AsyncClient], topology: Topology = LINE) -> None:
        self.clients = clients
        self.topology = topology
        self.elsewhere = True

    async def stop(self, name: str, *, kill: bool) -> None:
        raise StepError(f"cannot stop {name} of a line started elsewhere; run without --url")

    async def start(self, name: str) -> None:
        raise StepError(f"cannot start {name} of a line started elsewhere; run without --url")

    async def reap(self) -> set[str]:
        return set()


@contextlib.asynccontextmanager
async def own_stack(config: LineConfig, names: Sequence[str]) -> AsyncIterator[ProcessStack]:
    """A fresh line of just these services, stopped again when the scenario ends."""
    line = await to_thread.run_sync(start_line, config, list(names))
    stack = ProcessStack(line)
    try:
        for name in names:
            stack.connect(name)
        yield stack
    finally:
        await stack.close()
        await to_thread.run_sync(line.stop)


Report = Callable[[Entry], None]


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        stack: Stack,
        *,
        api_token: str,
        admin_token: str,
        auditor_token: str,
        seed: int | None = None,
        report: Report | None = None,
    ) -> None:
        self.scenario = scenario
        self.stack = stack
        self.topology = topology = stack.topology
        self.api_token = api_token
        self.admin_token = admin_token
        self.auditor_token = auditor_token
        self.seed = seed
        self.report = report or (lambda _entry: None)
        self.running = stack.clients
        self.control = LineControl(self.running, admin_token, topology)
        self.auditor = Auditor(self.running, auditor_token, topology)
        self.lag = LagCollector(self.control)
        named = {name for step in scenario.steps for name in step.audited()}
        self.watched = [*scenario.watched(), *sorted(named - set(scenario.watched()))]
        self.present = set(scenario.needed())
        self.variables: dict[str, Any] = {}
        self.jobs: list[dict[str, Any]] = []
        self.audit: Audit | None = None
        self.timeline: list[Entry] = []
        self.failures: list[str] = []
        self.built_ins: dict[str, Any] = {}
        self.died: set[str] = set()
        self.pending: Entry | None = None
        self.peak_lag_seconds: dict[str, float] = {}
        # each watched edge's drift when the story began: a line started elsewhere holds records
        # of its own (a seed, earlier runs), and a story's counts are what it adds to them
        self.baseline: dict[str, dict[str, int]] = {}

    async def run(self) -> list[Entry]:
        try:
            await self._tell()
        finally:
            self._flush()
        await self._measure()
        return self.timeline

    async def _measure(self) -> None:
        """Each edge's longest propagation in the run, from what its consumer applied and when:
        not only what the steps happened to sample."""
        if not self.timeline:
            return
        await self.lag.collect()
        until = max(entry.at for entry in self.timeline)
        measured = self.lag.report(until, since=self.timeline[0].at).edges
        self.peak_lag_seconds = {
            name: lag.stats.lags[-1] for name, lag in measured.items() if lag.stats.lags
        }

    async def _tell(self) -> None:
        start = self.scenario.start
        if start is not None and await self.control.now() < start:
            await self._advance_to(start)  # a line started elsewhere, still before the story
        began = await self._record(0, "start", f"running {', '.join(self.running)}")
        self.baseline = {name: dict(counts) for name, counts in began.drift.items()}
        if start is not None and self.timeline[-1].at != start:
            self.failures.append(f"the line's clock is past the scenario's start ({start})")
            return
        if self.seed is not None:
            await self._seed(self.seed)
        for number, step in enumerate(self.scenario.steps, start=1):
            try:
                await self._step(number, step)
            except (StepError, ControlError, UpstreamError, httpx.HTTPError) as error:
                message = f"step {number} ({step.label()}): {error}"
                self.failures.append(message)
                await self._record(number, step.label(), str(error), ok=False)
                return

    async def _seed(self, seed: int) -> None:
        assert self.scenario.seed is not None
        counts = await seed_line(
            self.running, self.control, self.api_token, self.scenario.seed.size, seed
        )
        self.audit = None
        shown = ", ".join(f"{n:,} {what}" for what, n in counts.items())
        await self._record(0, f"seed {self.scenario.seed.size.value} (seed {seed})", shown)

    async def _step(self, number: int, step: Step) -> None:
        self.died = set()
        act = self._ACTS[type(step)]
        await act(self, number, step)
        await self._reap(wait=bool(set(step.dies) - self.died))
        missing = sorted(set(step.dies) - self.died)
        unplanned = sorted(self.died - set(step.dies))
        if unplanned:
            raise StepError(f"{', '.join(unplanned)} exited unexpectedly")
        if step.dies:
            last = self.timeline[-1]
            ok = not missing
            text = (
                f"{', '.join(sorted(self.died))} died as planned"
                if ok
                else f"expected {', '.join(missing)} to die; still running"
            )
            last.checks.append(Check(ok, text))
            last.ok = ok if last.ok is None else last.ok and ok
            if not ok:
                self.failures.append(f"step {number} ({step.label()}): {text}")
        self._flush()

    async def _reap(self, *, wait: bool) -> set[str]:
        """Services that have died since the last look; if some are meant to, give them time."""
        died = await self.stack.reap()
        deadline = time.monotonic() + (DEATH_WAIT if wait else 0)
        while not died and time.monotonic() < deadline:
            await anyio.sleep(0.1)
            died = await self.stack.reap()
        if died:
            self.audit = None
            self.died |= died
        return died

    # -- the steps --------------------------------------------------------------------------

    async def _note(self, number: int, step: Note) -> None:
        await self._record(number, step.label(), "")

    async def _request(self, number: int, step: Request) -> None:
        method, service, path = step.parts()
        answer = await self._call(
            service,
            method,
            self._fill(path),
            token=step.token,
            params=self._fill(step.params),
            body=self._fill(step.body),
        )
        if method != "GET":
            self.audit = None
        changed = f"{answer.status_code} {answer.reason_phrase}"
        checks: list[Check] = []
        if step.status is not None:
            ok = answer.status_code == step.status
            checks.append(
                Check(ok, f"answered {step.status}")
                if ok
                else Check(
                    False,
                    f"expected {step.status}, found {answer.status_code}: {answer.text[:200]}",
                )
            )
        elif answer.status_code == 409 and self.stack.elsewhere:
            raise StepError(
                f"{service} already holds a record this step creates ({answer.text[:200]}): the "
                "running line has it from its seed, its own use or an earlier run of this story; "
                "run it without --url, on a line of its own"
            )
        elif not answer.is_success:
            raise StepError(f"{service} answered {answer.status_code}: {answer.text[:300]}")
        if step.save and answer.is_success:
            for name, where in step.save.items():
                try:
                    self.variables[name] = lookup(answer.json(), self._fill(where))
                except (LookupError, ValueError) as error:
                    raise StepError(f"save {name}: {error}") from error
            changed += f"; saved {', '.join(step.save)}"
        await self._checked(number, step.label(), changed, checks)

    async def _advance(self, number: int, step: Advance) -> None:
        now = await self.control.now()
        target = step.advance_to or now + parse_duration(step.advance or "")
        if target < now:
            raise StepError(f"advance_to: {target.isoformat()} is before now ({now.isoformat()})")
        every = parse_duration(step.every) if step.every else target - now
        while True:
            moment = min(now + every, target)
            ran = await self._advance_to(moment)
            now = moment
            await self._record(number, step.label(), self._summary(ran))
            if now >= target:
                return

    async def _sync(self, number: int, step: Sync) -> None:
        edge = self.topology.edge(step.sync)
        self.audit = None
        try:
            outcome = await self.control.run_edge(edge, full=step.full)
        except (ControlError, httpx.TransportError) as error:
            if not step.dies or not await self._reap(wait=True):
                await self._record(number, step.label(), f"failed: {_first_line(error)}")
                return
            outcome = None
        if outcome is None:
            changed = f"{', '.join(sorted(self.died))} died during the copy"
        else:
            self.jobs.append({"service": edge.consumer, **outcome})
            changed = self._summary([{"service": edge.consumer, **outcome}]) or "no changes"
        await self._record(number, step.label(), changed)

    async def _run_job(self, number: int, step: RunJob) -> None:
        self.audit = None
        try:
            outcome = await self.control.run_job(step.service, step.job)
        except ControlError as error:
            await self._record(number, step.label(), f"failed: {_first_line(error)}")
            return
        self.jobs.append({"service": step.service, **outcome})
        summary = self._summary([{"service": step.service, **outcome}])
        await self._record(number, step.label(), summary or "nothing to do")

    async def _fault(self, number: int, step: Fault) -> None:
        now = await self.control.now()
        until = step.ends or (now + parse_duration(step.lasting) if step.lasting else None)
        body: dict[str, Any] = {"kind": step.fault, "until": until.isoformat() if until else None}
        for name in ("status", "seconds", "edge", "times", "path", "write", "reader"):
            if getattr(step, name) is not None:
                body[name] = getattr(step, name)
        answer = await self._call(step.service, "POST", "/admin/faults", token="admin", body=body)
        if answer.status_code != 201:
            raise StepError(
                f"{step.service} refused the fault: {answer.status_code} {answer.text[:300]}"
            )
        how = {
            "fail": f"fails every request with {step.status or 503}",
            "slow": f"answers every request {step.seconds or 1.0:g} s late",
            "drop_pages": "loses the pages it reads",
            "duplicate_pages": "reads each page twice",
            "reorder_pages": "reads pages out of order",
            "delay_pages": f"reads each page {step.seconds or 1.0:g} s late",
            "die_mid_batch": "dies in the middle of a batch",
            "disk_full": "has a full disk",
            "read_only": "has a read-only database",
            "edit_mid_read": f"takes an edit while it answers {step.reader or 'a'} read of "
            f"{step.path}",
        }[step.fault]
        if step.edge:
            how += f" of {step.edge}"
        if step.times:
            how += ", once" if step.times == 1 else f", {step.times} times"
        when = f" until {until:%a %d %b %H:%M}" if until else "" if step.times else " until cleared"
        self.audit = None
        await self._record(number, step.label(), f"{step.service} {how}{when}")

    async def _clear_faults(self, number: int, step: ClearFaults) -> None:
        answer = await self._call(step.clear_faults, "DELETE", "/admin/faults", token="admin")
        if not answer.is_success:
            raise StepError(f"{step.clear_faults} answered {answer.status_code}: {answer.text}")
        self.audit = None
        await self._record(number, step.label(), f"{step.clear_faults} behaves again")

    async def _stop(self, number: int, step: Stop) -> None:
        if step.stop not in self.running:
            raise StepError(f"{step.stop} is not running")
        await self.stack.stop(step.stop, kill=step.kill)
        self.audit = None
        await self._record(
            number, step.label(), f"{step.stop} {'killed' if step.kill else 'stopped'}"
        )

    async def _start(self, number: int, step: Start) -> None:
        if step.start in self.running:
            raise StepError(f"{step.start} is already running")
        now = await self.control.now()
        await self.stack.start(step.start)
        self.audit = None
        # a restarted service resumes from the time it stopped and catches up on its own jobs
        answer = await self._call(
            step.start, "POST", "/admin/clock/advance", token="admin", body={"to": now.isoformat()}
        )
        if not answer.is_success:
            raise StepError(f"{step.start} did not catch up: {answer.status_code} {answer.text}")
        ran = [{"service": step.start, **job} for job in answer.json()["ran"]]
        self.jobs += ran
        summary = self._summary(ran)
        await self._record(
            number,
            step.label(),
            f"{step.start} started" + (f"; caught up: {summary}" if summary else ""),
        )

    async def _expire_cursors(self, number: int, step: ExpireCursors) -> None:
        owner = step.expire_cursors
        answer = await self._call(
            owner, "POST", "/admin/feed/prune", token="admin", body={"keep": 0}
        )
        if not answer.is_success:
            raise StepError(f"{owner} answered {answer.status_code}: {answer.text[:300]}")
        pruned = answer.json()
        self.audit = None
        changed = (
            f"{owner} dropped {pruned['pruned']} changes from its feed; "
            f"cursors at or before {pruned['pruned_through']} expire"
        )
        await self._record(number, step.label(), changed)

    async def _expect(self, number: int, step: Expect) -> None:
        checks = await self._check(step.expect)
        await self._checked(number, step.label(), "", checks)

    async def _until(self, number: int, step: Until) -> None:
        start = await self.control.now()
        deadline = start + parse_duration(step.within)
        every = parse_duration(step.step) if step.step else None
        ran: list[dict[str, Any]] = []
        watched = self._acting_on(step.until.observed())
        await self.lag.collect()
        taken_from = len(self.lag.logs.applied)
        while True:
            checks = await self._check(step.until)
            now, due = await self._when(watched)
            took = now - start
            if all(check.ok for check in checks):
                took = now - await self._waited_for(taken_from, step.until.observed(), start)
                break
            if now >= deadline:
                failed = "; ".join(check.text for check in checks if not check.ok)
                checks = [Check(False, f"not within {step.within}: {failed}")]
                break
            moments = [deadline, due]
            if every is not None:
                moments.append(now + every)
            ran += await self._advance_to(min(m for m in moments if m is not None and m > now))
        changed = f"after {format_duration(took.total_seconds())}"
        summary = self._summary(ran)
        if summary:
            changed += f"; {summary}"
        if step.took is not None and all(check.ok for check in checks):
            checks.append(bounded("took", step.took, took.total_seconds()))
        await self._checked(number, step.label(), changed, checks, took=took)

    async def _waited_for(self, taken_from: int, observed: set[str], start: datetime) -> datetime:
        """When the owner committed the change the step waited for: the latest one made before
        the step began that a copy the step reads took in during it; else the step's start."""
        await self.lag.collect()
        taken = latest_taken(self.lag.logs, taken_from, observed, start, self.topology)
        return taken or start

    _ACTS: Mapping[type[Step], Callable[[Runner, int, Any], Awaitable[None]]] = {
        Note: _note,
        Request: _request,
        Advance: _advance,
        Sync: _sync,
        RunJob: _run_job,
        Fault: _fault,
        ClearFaults: _clear_faults,
        Stop: _stop,
        Start: _start,
        ExpireCursors: _expire_cursors,
        Expect: _expect,
        Until: _until,
    }

    # -- checks -----------------------------------------------------------------------------

    async def _check(self, expected: Expectations) -> list[Check]:
        checks: list[Check] = []
        audit = Audit({}, {}, {})
        if expected.drift or expected.lag or expected.converged:
            audit = await self._audit()
        for name, classes in expected.drift.items():
            counts = audit.drift.get(name)
            for drift, bound in classes.items():
                own = self._own(name, drift)
                found = None if counts is None else counts[drift] - own
                check = bounded(f"{name} {drift}", bound, found, self._why(audit, name))
                checks.append(
                    Check(check.ok, f"{check.text}, besides the line's own {own}")
                    if own and found is not None
                    else check
                )
        for name, lag in expected.lag.items():
            known = audit.lag.get(name, EdgeLag(None, None, None))
            wanted: list[tuple[str, Bound | None, float | None]] = [
                ("changes behind", lag.changes, known.changes),
                ("oldest change", lag.oldest, known.oldest_age_seconds),
                ("since last sync", lag.since_sync, known.since_sync_seconds),
            ]
            checks += [
                bounded(f"{name} {what}", bound, found, self._why(audit, name))
                for what, bound, found in wanted
                if bound is not None
            ]
        for name in expected.converged:
            counts = audit.drift.get(name)
            if counts is None:
                checks.append(Check(False, f"{name}: not audited ({self._why(audit, name)})"))
                continue
            unsettled = ("conflicting",) if name in COMPARISONS else UNSETTLED
            left = {
                drift: counts[drift] - self._own(name, drift)
                for drift in unsettled
                if counts[drift] > self._own(name, drift)
            }
            checks.append(
                Check(True, f"{name} converged")
                if not left
                else Check(False, f"{name} not converged: " + _counts(left))
            )
        for service, jobs in expected.jobs.items():
            for job, count in jobs.items():
                runs = [j for j in self.jobs if j["service"] == service and j["job"] == job]
                tally: list[tuple[str, Bound | None, float]] = [
                    ("runs", count.ran, len(runs)),
                    ("failures", count.failed, sum(not j["ok"] for j in runs)),
                ]
                checks += [
                    bounded(f"{service} {job} {what}", bound, found)
                    for what, bound, found in tally
                    if bound is not None
                ]
        for value in expected.value:
            checks.append(await self._value(value))
        return checks

    async def _value(self, value: Value) -> Check:
        label = value.label()
        filled = Value.model_validate(self._fill(value.model_dump()))
        if filled.service not in self.running:
            return Check(False, f"{label}: {filled.service} is not running")
        answer = await self._call(
            filled.service, "GET", filled.path, token=filled.token, params=filled.params
        )
        if answer.status_code != filled.status:
            return Check(
                False,
                f"{label}: expected status {filled.status}, found {answer.status_code}: "
                f"{answer.text[:200]}",
            )
        try:
            found: Any = answer.json()
        except ValueError:
            found = answer.text
        if filled.field is not None:
            try:
                found = lookup(found, filled.field)
            except LookupError as error:
                return Check(False, f"{label}: {error}")
        if "equals" in value.model_fields_set and found != filled.equals:
            wanted, shown = json.dumps(filled.equals), json.dumps(found)
            return Check(False, f"{label}: expected {wanted}, found {shown}")
        shown = found if isinstance(found, str) else json.dumps(found)
        if filled.contains is not None and filled.contains not in shown:
            return Check(
                False, f"{label}: expected to contain {filled.contains!r}: {shown[:200]!r}"
            )
        if "equals" in value.model_fields_set:
            return Check(True, f"{label} = {json.dumps(found)}")
        if filled.contains is not None:
            return Check(True, f"{label} mentions {filled.contains!r}")
        return Check(True, f"{label} answered {answer.status_code}")

    # -- the line ---------------------------------------------------------------------------

    async def _advance_to(self, target: datetime) -> list[dict[str, Any]]:
        """Move every running clock to `target`; a service that dies on the way is left behind."""
        self.audit = None
        while True:
            try:
                ran = await self.control.advance(to=target)
            except (ControlError, httpx.TransportError) as error:
                if not await self._reap(wait=True):
                    raise StepError(f"the line stopped answering: {_first_line(error)}") from error
                continue
            self.jobs += ran
            return ran

    def _acting_on(self, services: set[str]) -> set[str]:
        """The services that change these services' records: themselves, and who commands them."""
        acting = set(services)
        while True:
            more = {c.caller for c in self.topology.commands if c.target in acting} - acting
            if not more:
                return acting
            acting |= more

    async def _when(self, acting: set[str]) -> tuple[datetime, datetime | None]:
        """The line's time, and when the next job of any of the `acting` services falls due."""
        clocks = await self.control.clocks()
        now = max(datetime.fromisoformat(view["now"]) for view in clocks.values())
        due = [
            datetime.fromisoformat(view["next_due"])
            for name, view in clocks.items()
            if name in acting and view["next_due"]
        ]
        return now, min(due, default=None)

    async def _call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        token: str = "api",
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        if service not in self.running:
            raise StepError(f"{service} is not running")
        tokens = {"api": self.api_token, "admin": self.admin_token, "auditor": self.auditor_token}
        secret = tokens.get(token)
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return await self.running[service].request(
            method,
            path,
            params=params or None,
            json=body if method in ("POST", "PUT", "PATCH") and body is not None else None,
            headers=headers,
        )

    def _fill(self, value: Any) -> Any:
        """`value` with the variables saved so far filled in."""
        try:
            return substitute(value, {**self.variables, **self.built_ins})
        except KeyError as error:
            raise StepError(
                f"${{{error.args[0]}}} has no value: the step that saves it did not succeed"
            ) from error

    async def _audit(self) -> Audit:
        """The watched edges and comparisons now, reusing the last audit if nothing moved."""
        if self.audit is not None:
            return self.audit
        now = await self.control.now()
        audit = Audit({}, {}, {})
        succeeded: dict[str, dict[str, datetime]] = {}
        copied = {edge.name for edge in self.topology.edges}
        for name in self.watched:
            if name in COMPARISONS:
                continue
            if name not in copied:
                gone = LINE.edge(name)
                audit.unaudited[name] = f"{gone.consumer} keeps no copy: it reads {gone.owner} live"
                continue
            edge = self.topology.edge(name)
            down = [s for s in (edge.owner, edge.consumer) if s not in self.running]
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
            if edge.consumer in self.running and edge.schedule is not None:
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
        wanted = [name for name in self.watched if name in COMPARISONS]
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
        self.audit = audit
        return audit

    async def _successes(self, service: str) -> dict[str, datetime]:
        answer = await self._call(service, "GET", "/admin/jobs", token="admin")
        answer.raise_for_status()
        return {
            job["name"]: datetime.fromisoformat(job["last_success_at"])
            for job in answer.json()
            if job["last_success_at"]
        }

    def _own(self, name: str, drift: str) -> int:
        """How many of an edge's records were in this class before the story began."""
        return self.baseline.get(name, {}).get(drift, 0)

    @staticmethod
    def _why(audit: Audit, name: str) -> str:
        return audit.unaudited.get(name, "not watched")

    # -- the timeline -----------------------------------------------------------------------

    async def _record(
        self,
        number: int,
        step: str,
        changed: str,
        checks: Sequence[Check] = (),
        *,
        ok: bool | None = None,
        took: timedelta | None = None,
    ) -> Entry:
        await self._reap(wait=False)
        try:
            audit = await self._audit()
            at = await self.control.now()
        except (ControlError, UpstreamError, httpx.HTTPError):
            audit, at = Audit({}, {}, {}), self.timeline[-1].at if self.timeline else _epoch()
        self.built_ins = {"now": at.isoformat(), "today": at.date().isoformat()}
        entry = Entry(
            number,
            at,
            step,
            changed,
            audit.drift,
            audit.lag,
            audit.unaudited,
            ok,
            list(checks),
            took.total_seconds() if took is not None else None,
        )
        self._flush()
        self.timeline.append(entry)
        # reported when the next entry comes, or the step ends: the step may add a check to it
        self.pending = entry
        return entry

    def _flush(self) -> None:
        if self.pending is not None:
            self.report(self.pending)
            self.pending = None

    async def _checked(
        self,
        number: int,
        step: str,
        changed: str,
        checks: Sequence[Check],
        *,
        took: timedelta | None = None,
    ) -> None:
        ok = all(check.ok for check in checks) if checks else None
        self.failures += [f"step {number} ({step}): {c.text}" for c in checks if not c.ok]
        await self._record(number, step, changed, checks, ok=ok, took=took)

    def _summary(self, ran: Sequence[Mapping[str, Any]]) -> str:
        """What the jobs did, in the order they first ran; quiet runs are only counted."""
        return summarise(ran, self.present, self.topology)


def bounded(label: str, bound: Bound, found: float | None, unknown: str = "") -> Check:
    """Whether `found` is within `bound`, said either way."""
    if found is None:
        return Check(False, f"{label}: not known ({unknown})")
    if bound.holds(found):
        return Check(True, f"{label} {bound.show(found)}")
    return Check(False, f"{label}: expected {bound}, found {bound.show(found)}")


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)


def _first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def summarise(
    ran: Sequence[Mapping[str, Any]], present: Collection[str], topology: Topology = LINE
) -> str:
    """Jobs' effects, then their failures by cause, in the order the jobs first ran.

    A copy whose owner is not part of the scenario fails every time by design: not reported.
    """
    runs: Counter[tuple[str, str]] = Counter()
    effects: dict[tuple[str, str], Counter[str]] = {}
    failures: dict[str, Counter[tuple[str, str]]] = {}
    edges = {edge.name: edge for edge in topology.edges}
    for job in ran:
        key = (job["service"], job["job"])
        runs[key] += 1
        effect = effects.setdefault(key, Counter())
        if not job["ok"]:
            edge = edges.get(job["job"].removesuffix(":full"))
            if edge is None or edge.owner in present:
                failures.setdefault(_cause(job.get("error")), Counter())[key] += 1
            continue
        result = job.get("result")
        if not isinstance(result, Mapping):
            continue
        if "upserted" in result:
            effect["copied"] += result["upserted"]
            effect["deleted"] += result["deleted"]
            effect["flagged"] += result["flagged"]
            effect["rejected"] += len(result.get("rejected") or [])
            effect["relisted"] += bool(result.get("relisted"))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in result.values()):
            effect.update({name: count for name, count in result.items() if count})
    parts = []
    quiet = 0
    failed = {key for keys in failures.values() for key in keys}
    for key, count in runs.items():
        done = {what: n for what, n in effects[key].items() if n}
        if done:
            shown = ", ".join(
                what if what == "relisted" else f"{what} {n}" for what, n in done.items()
            )
            parts.append(f"{_job_name(*key)}: {shown}")
        elif key not in failed:
            quiet += count
    for cause, keys in failures.items():
        jobs = ", ".join(
            _job_name(*key) + (f" {n} times" if n > 1 else "") for key, n in keys.items()
        )
        parts.append(f"failed ({cause}): {jobs}")
    if quiet:
        parts.append(f"{quiet} quiet job run{'s' if quiet > 1 else ''}")
    return "; ".join(parts)


def _job_name(service: str, job: str) -> str:
    edge_job = job.removesuffix(":full") in {edge.name for edge in LINE.edges}
    return job if job.startswith(f"{service}.") or edge_job else f"{service} {job}"


def _cause(error: str | None) -> str:
    """Why a job failed, in a few words: an owner's answer without its detail."""
    text = _first_line(Exception(error or "failed"))
    answered = re.match(r"^(\S+ answered \d{3})", text)
    return answered.group(1) if answered else text[:80]


@dataclass(frozen=True)
class LineOptions:
    """Where a run's own line lives and listens, and the tokens it is driven with."""

    state_dir: Path
    port_offset: int = 0
    admin_token: str = "admin-secret"
    api_token: str = "api-secret"
    auditor_token: str = "auditor-secret"
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Options(LineOptions):
    """How to run a scenario: on a line of its own (the default) or on one already running."""

    attach: bool = False
    overrides: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    seed: int | None = None


def service_settings(scenario: Scenario, options: Options) -> dict[str, dict[str, str]]:
    """Each service's extra settings: the scenario's, then the run's, and its start time."""
    merged: dict[str, dict[str, str]] = {}
    for name in scenario.needed():
        values = {**scenario.settings.get(name, {}), **options.settings.get(name, {})}
        if scenario.start is not None:
            values["clock_start"] = scenario.start.isoformat()
        if values:
            merged[name] = values
    return merged


async def run_scenario(
    scenario: Scenario, options: Options, report: Report | None = None
) -> Result:
    """Run the scenario, write `<state_dir>/scenarios/last.json`, return the verdict."""
    began = time.monotonic()
    settings = service_settings(scenario, options)
    seed = (
        options.seed
        if options.seed is not None
        else (scenario.seed.seed if scenario.seed else None)
    )
    names = scenario.needed()
    runner_args: dict[str, Any] = {
        "api_token": options.api_token,
        "admin_token": options.admin_token,
        "auditor_token": options.auditor_token,
        "seed": seed,
        "report": report,
    }
    if options.attach:
        if options.overrides or options.settings or scenario.settings:
            raise RunError(
                "a line started elsewhere runs with its own settings: edge overrides and service "
                "settings need the scenario's own line (run it without --url)"
            )
        async with attached_stack(options, names) as stack:
            runner = Runner(scenario, stack, **runner_args)
            timeline = await runner.run()
    else:
        home = options.state_dir / "scenarios" / scenario.name
        shutil.rmtree(home, ignore_errors=True)
        config = LineConfig(
            home,
            host=options.host,
            admin_token=options.admin_token,
            api_token=options.api_token,
            auditor_token=options.auditor_token,
            port_offset=options.port_offset,
            edge_overrides=dict(options.overrides),
            service_settings=settings,
        )
        async with own_stack(config, names) as process_stack:
            runner = Runner(scenario, process_stack, **runner_args)
            timeline = await runner.run()
    result = Result(
        scenario=scenario.name,
        title=scenario.title,
        verdict="fail" if runner.failures else "pass",
        seed=seed,
        overrides=dict(options.overrides),
        settings=settings,
        services=names,
        timeline=timeline,
        failures=runner.failures,
        elapsed_seconds=round(time.monotonic() - began, 1),
        peak_lag_seconds=runner.peak_lag_seconds,
    )
    write_last(result, options.state_dir)
    return result


@contextlib.asynccontextmanager
async def attached_stack(options: Options, names: Sequence[str]) -> AsyncIterator[AttachedStack]:
    """Clients for a running line's services; every service the scenario needs must answer."""
    async with contextlib.AsyncExitStack() as exits:
        clients = {}
        for name in names:
            url = f"http://{options.host}:{LINE.service(name).port + options.port_offset}"
            client = await exits.enter_async_context(httpx.AsyncClient(base_url=url, timeout=300))
            try:
                healthy = (await client.get("/health", timeout=2)).status_code == 200
            except httpx.TransportError:
                healthy = False
            if not healthy:
                raise RunError(f"{name} does not answer at {url}; the scenario needs it")
            clients[name] = client
        yield AttachedStack(clients)


def write_last(result: Result, state_dir: Path, body: Mapping[str, Any] | None = None) -> Path:
    path = state_dir / "scenarios" / LAST_RUN
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body or result.to_json(), indent=2), encoding="utf-8")
    return path


def write_comparison(baseline: Result, what_if: Result, how: str, state_dir: Path) -> Path:
    """The last run as the comparison it was: the what-if beside the line as it is."""
    compared = {"what_if": how, "baseline": baseline.to_json()}
    return write_last(what_if, state_dir, {**what_if.to_json(), "compared": compared})
