"""What each kind of step does to the line, one handler a kind, and what it records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from serviceline.runtime.clock import parse_duration
from serviceline.scenarios.auditing import Audits
from serviceline.scenarios.errors import StepError
from serviceline.scenarios.expectations import Checker, bounded
from serviceline.scenarios.jobs import first_line
from serviceline.scenarios.line import Line
from serviceline.scenarios.recording import Check, Recorder
from serviceline.scenarios.spec import (
    Advance,
    ClearFaults,
    Expect,
    ExpireCursors,
    Fault,
    Note,
    Request,
    RunJob,
    Start,
    Step,
    Stop,
    Sync,
    Until,
    format_duration,
)
from serviceline.scenarios.variables import Variables
from serviceline.stack.control import ControlError


@dataclass(frozen=True)
class Run:
    """What a handler works with: the line, its audits, the variables, the timeline."""

    line: Line
    audits: Audits
    variables: Variables
    recorder: Recorder
    checker: Checker


Kind = TypeVar("Kind", bound=Step)
Handler = Callable[[Run, int, Kind], Awaitable[None]]
HANDLERS: dict[type[Step], Handler[Any]] = {}


def handles(kind: type[Kind]) -> Callable[[Handler[Kind]], Handler[Kind]]:
    """Registers the handler of one kind of step."""

    def register(handler: Handler[Kind]) -> Handler[Kind]:
        HANDLERS[kind] = handler
        return handler

    return register


def handler_for(step: Step) -> Handler[Any]:
    try:
        return HANDLERS[type(step)]
    except KeyError:
        raise StepError(
            f"{step.action[0]}: no handler for this kind of step ({type(step).__name__})"
        ) from None


@handles(Note)
async def note(run: Run, number: int, step: Note) -> None:
    await run.recorder.record(number, step.label(), "")


@handles(Request)
async def request(run: Run, number: int, step: Request) -> None:
    method, service, path = step.parts()
    fill = run.variables.fill
    answer = await run.line.call(
        service,
        method,
        fill(path),
        token=step.token,
        params=fill(step.params),
        body=fill(step.body),
    )
    if method != "GET":
        run.line.changed()
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
    elif answer.status_code == 409 and run.line.stack.elsewhere:
        raise StepError(
            f"{service} already holds a record this step creates ({answer.text[:200]}): the "
            "running line has it from its seed, its own use or an earlier run of this story; "
            "run it without --url, on a line of its own"
        )
    elif not answer.is_success:
        raise StepError(f"{service} answered {answer.status_code}: {answer.text[:300]}")
    if step.save and answer.is_success:
        run.variables.save(step.save, answer)
        changed += f"; saved {', '.join(step.save)}"
    await run.recorder.checked(number, step.label(), changed, checks)


@handles(Advance)
async def advance(run: Run, number: int, step: Advance) -> None:
    now = await run.line.control.now()
    target = step.advance_to or now + parse_duration(step.advance or "")
    if target < now:
        raise StepError(f"advance_to: {target.isoformat()} is before now ({now.isoformat()})")
    every = parse_duration(step.every) if step.every else target - now
    while True:
        moment = min(now + every, target)
        ran = await run.line.advance_to(moment)
        now = moment
        await run.recorder.record(number, step.label(), run.line.summary(ran))
        if now >= target:
            return


@handles(Sync)
async def sync(run: Run, number: int, step: Sync) -> None:
    line = run.line
    edge = line.topology.edge(step.sync)
    line.changed()
    try:
        outcome = await line.control.run_edge(edge, full=step.full)
    except (ControlError, httpx.TransportError) as error:
        if not step.dies or not await line.reap(wait=True):
            await run.recorder.record(number, step.label(), f"failed: {first_line(error)}")
            return
        outcome = None
    if outcome is None:
        changed = f"{', '.join(sorted(line.died))} died during the copy"
    else:
        line.jobs.append({"service": edge.consumer, **outcome})
        changed = line.summary([{"service": edge.consumer, **outcome}]) or "no changes"
    await run.recorder.record(number, step.label(), changed)


@handles(RunJob)
async def run_job(run: Run, number: int, step: RunJob) -> None:
    run.line.changed()
    try:
        outcome = await run.line.control.run_job(step.service, step.job)
    except ControlError as error:
        await run.recorder.record(number, step.label(), f"failed: {first_line(error)}")
        return
    run.line.jobs.append({"service": step.service, **outcome})
    summary = run.line.summary([{"service": step.service, **outcome}])
    await run.recorder.record(number, step.label(), summary or "nothing to do")


@handles(Fault)
async def fault(run: Run, number: int, step: Fault) -> None:
    now = await run.line.control.now()
    until = step.ends or (now + parse_duration(step.lasting) if step.lasting else None)
    body: dict[str, Any] = {"kind": step.fault, "until": until.isoformat() if until else None}
    for name in ("status", "seconds", "edge", "times", "path", "write", "reader"):
        if getattr(step, name) is not None:
            body[name] = getattr(step, name)
    answer = await run.line.call(step.service, "POST", "/admin/faults", token="admin", body=body)
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
        "edit_mid_read": f"takes an edit while it answers {step.reader or 'a'} read of {step.path}",
    }[step.fault]
    if step.edge:
        how += f" of {step.edge}"
    if step.times:
        how += ", once" if step.times == 1 else f", {step.times} times"
    when = f" until {until:%a %d %b %H:%M}" if until else "" if step.times else " until cleared"
    run.line.changed()
    await run.recorder.record(number, step.label(), f"{step.service} {how}{when}")


@handles(ClearFaults)
async def clear_faults(run: Run, number: int, step: ClearFaults) -> None:
    answer = await run.line.call(step.clear_faults, "DELETE", "/admin/faults", token="admin")
    if not answer.is_success:
        raise StepError(f"{step.clear_faults} answered {answer.status_code}: {answer.text}")
    run.line.changed()
    await run.recorder.record(number, step.label(), f"{step.clear_faults} behaves again")


@handles(Stop)
async def stop(run: Run, number: int, step: Stop) -> None:
    if step.stop not in run.line.running:
        raise StepError(f"{step.stop} is not running")
    await run.line.stack.stop(step.stop, kill=step.kill)
    run.line.changed()
    how = "killed" if step.kill else "stopped"
    await run.recorder.record(number, step.label(), f"{step.stop} {how}")


@handles(Start)
async def start(run: Run, number: int, step: Start) -> None:
    line = run.line
    if step.start in line.running:
        raise StepError(f"{step.start} is already running")
    now = await line.control.now()
    await line.stack.start(step.start)
    line.changed()
    # a restarted service resumes from the time it stopped and catches up on its own jobs
    answer = await line.call(
        step.start, "POST", "/admin/clock/advance", token="admin", body={"to": now.isoformat()}
    )
    if not answer.is_success:
        raise StepError(f"{step.start} did not catch up: {answer.status_code} {answer.text}")
    ran = [{"service": step.start, **job} for job in answer.json()["ran"]]
    line.jobs += ran
    summary = line.summary(ran)
    await run.recorder.record(
        number,
        step.label(),
        f"{step.start} started" + (f"; caught up: {summary}" if summary else ""),
    )


@handles(ExpireCursors)
async def expire_cursors(run: Run, number: int, step: ExpireCursors) -> None:
    owner = step.expire_cursors
    answer = await run.line.call(
        owner, "POST", "/admin/feed/prune", token="admin", body={"keep": 0}
    )
    if not answer.is_success:
        raise StepError(f"{owner} answered {answer.status_code}: {answer.text[:300]}")
    pruned = answer.json()
    run.line.changed()
    changed = (
        f"{owner} dropped {pruned['pruned']} changes from its feed; "
        f"cursors at or before {pruned['pruned_through']} expire"
    )
    await run.recorder.record(number, step.label(), changed)


@handles(Expect)
async def expect(run: Run, number: int, step: Expect) -> None:
    checks = await run.checker.check(step.expect)
    await run.recorder.checked(number, step.label(), "", checks)


@handles(Until)
async def until(run: Run, number: int, step: Until) -> None:
    """Checks at each moment the expectations could change, moving the clock in between."""
    line, lag = run.line, run.audits.lag
    start = await line.control.now()
    deadline = start + parse_duration(step.within)
    every = parse_duration(step.step) if step.step else None
    ran: list[dict[str, Any]] = []
    watched = line.acting_on(step.until.observed())
    await lag.collect()
    taken_from = len(lag.logs.applied)
    while True:
        checks = await run.checker.check(step.until)
        now, due = await line.when(watched)
        took = now - start
        if all(check.ok for check in checks):
            took = now - await run.audits.waited_for(taken_from, step.until.observed(), start)
            break
        if now >= deadline:
            failed = "; ".join(check.text for check in checks if not check.ok)
            checks = [Check(False, f"not within {step.within}: {failed}")]
            break
        moments = [deadline, due]
        if every is not None:
            moments.append(now + every)
        ran += await line.advance_to(min(m for m in moments if m is not None and m > now))
    changed = f"after {format_duration(took.total_seconds())}"
    summary = line.summary(ran)
    if summary:
        changed += f"; {summary}"
    if step.took is not None and all(check.ok for check in checks):
        checks.append(bounded("took", step.took, took.total_seconds()))
    await run.recorder.checked(number, step.label(), changed, checks, took=took)
