"""Runs each service's jobs (its copy edges and its own chores) on the simulated clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyio import to_thread
from croniter import croniter
from sqlalchemy import Engine
from sqlmodel import Session, select

from serviceline.clock import SimulatedClock
from serviceline.db import JobRun, read_state, write_state
from serviceline.settings import ClockMode

log = logging.getLogger("serviceline.scheduler")
CLOCK_STATE = "clock.now"


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str | None  # cron on the simulated clock; None runs only when asked
    run: Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class JobResult:
    job: str
    due_at: datetime
    ok: bool
    result: Any = None
    error: str | None = None


class UnknownJobError(KeyError):
    pass


class Scheduler:
    def __init__(
        self, engine: Engine, clock: SimulatedClock, jobs: list[Job], origin: datetime
    ) -> None:
        for job in jobs:
            if job.schedule is not None and not croniter.is_valid(job.schedule):
                raise ValueError(f"job {job.name}: invalid cron schedule {job.schedule!r}")
        self.engine = engine
        self.clock = clock
        self.jobs = jobs
        self.origin = origin
        self.last_run: dict[str, datetime] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        """Pick up where the service left off: its clock and when each job last ran."""
        with Session(self.engine) as session:
            stored = read_state(session, CLOCK_STATE)
            self.clock.resume_from(datetime.fromisoformat(stored) if stored else None)
            for run in session.exec(select(JobRun)):
                if run.last_run_at is not None:
                    self.last_run[run.name] = run.last_run_at

    def due_at(self, job: Job) -> datetime | None:
        if job.schedule is None:
            return None
        start = self.last_run.get(job.name, self.origin)
        moment: datetime = croniter(job.schedule, start).get_next(datetime)
        return moment

    def next_due(self) -> tuple[datetime, Job] | None:
        upcoming = [
            (due, index)
            for index, job in enumerate(self.jobs)
            if (due := self.due_at(job)) is not None
        ]
        if not upcoming:
            return None
        moment, index = min(upcoming)
        return moment, self.jobs[index]

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise UnknownJobError(name)

    async def advance(self, moment: datetime) -> list[JobResult]:
        """Run, in time order, exactly the jobs that fall due up to `moment`."""
        async with self._lock:
            results: list[JobResult] = []
            while (upcoming := self.next_due()) is not None and upcoming[0] <= moment:
                due, job = upcoming
                if self.clock.mode is ClockMode.MANUAL and due > self.clock.now():
                    self.clock.set(due)
                results.append(await self._execute(job, due))
            if self.clock.mode is ClockMode.MANUAL and moment > self.clock.now():
                self.clock.set(moment)
            await to_thread.run_sync(self._save_clock)
            return results

    async def run_now(self, name: str) -> JobResult:
        job = self.job(name)
        async with self._lock:
            return await self._execute(job, None)

    async def run_realtime(self, tick: float = 0.2) -> None:
        while True:
            await self.advance(self.clock.now())
            await asyncio.sleep(tick)

    async def _execute(self, job: Job, due: datetime | None) -> JobResult:
        started = self.clock.now()
        try:
            result = await job.run()
        except Exception as error:  # a failed job is recorded; the schedule carries on
            log.warning("job %s failed: %s", job.name, error)
            outcome = JobResult(job.name, due or started, False, error=str(error))
        else:
            outcome = JobResult(job.name, due or started, True, result=result)
        if due is not None:
            self.last_run[job.name] = due
        await to_thread.run_sync(self._record, outcome, due is not None)
        return outcome

    def _record(self, outcome: JobResult, scheduled: bool) -> None:
        with Session(self.engine) as session:
            run = session.get(JobRun, outcome.job) or JobRun(name=outcome.job)
            if scheduled:
                run.last_run_at = outcome.due_at
            if outcome.ok:
                run.last_success_at = self.clock.now()
                run.last_error = None
            else:
                run.last_error = outcome.error
            session.add(run)
            session.commit()

    def _save_clock(self) -> None:
        with Session(self.engine) as session:
            write_state(session, CLOCK_STATE, self.clock.now().isoformat())
            session.commit()
