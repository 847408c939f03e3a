"""Runs each service's jobs (its copy edges and its own chores) on the simulated clock."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from croniter import croniter
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from serviceline.model.topology import SIDEKIQ_RETRIES
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import JobRun, read_state, write_state
from serviceline.runtime.settings import ClockMode

log = logging.getLogger("serviceline.runtime.scheduler")
CLOCK_STATE = "clock.now"
RETRIES_STATE = "scheduler.retries"
RETRIED_STATE = "scheduler.retried"
RETRY = timedelta(minutes=1)
# how many runs a walk for the next visible moment looks through: a day of a busy service
LOOK_AHEAD = 2000


@dataclass(frozen=True)
class RetryPolicy:
    """Sidekiq's exponential back-off: retry `count` (from 0) waits count**4 + 15 + jitter s."""

    retries: int = SIDEKIQ_RETRIES

    def delay(self, job: str, count: int) -> timedelta:
        # Sidekiq's jitter is rand(10) * (count + 1); a hash keeps it the same on every run
        jitter = zlib.crc32(f"{job}:{count}".encode()) % 10 * (count + 1)
        return timedelta(seconds=count**4 + 15 + jitter)


@dataclass(frozen=True)
class Retry:
    """A job's failures in a row, and when it is tried again (None: it gave up)."""

    failures: int
    due: datetime | None


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str | None  # cron on the simulated clock; None runs only when asked
    run: Callable[[], Awaitable[Any]]
    # or, instead of a schedule, when the job's own work next falls due (a TRN request's
    # next poll, a delayed completion): read after every run
    due: Callable[[], datetime | None] | None = None
    # a copy writes only the consumer's copies, which no other service reads, so copies in
    # different services can run in any order between two jobs that change what others see
    visible: bool = True
    # a failed run is tried again with back-off, before its next schedule if that comes later
    retry: RetryPolicy | None = None
    # as this service's records stand, the first moment a run would change what others see (a
    # decision job's first decision due), None if never; asked only while nothing that could
    # change those records runs before the job
    busy_from: Callable[[], datetime | None] | None = None
    # whether a run at this moment would change none of this service's records: a copy known
    # to find nothing, given the owners' heads the advance under way holds
    quiet: Callable[[datetime], bool] | None = None
    # told at the start of every advance, unless a retry of the job waits: a followed feed
    # learns there that its owner may have written since (serviceline.consumer.follow)
    prepare: Callable[[], None] | None = None
    # work `due` says is due at the moment the job last ran is new work (an owner's write after
    # that run, at the same moment): it runs then, not a minute later; such a job's run never
    # leaves work due at or before its own moment
    exact: bool = False


@dataclass(frozen=True)
class JobResult:
    job: str
    due_at: datetime
    ok: bool
    result: Any = None
    error: str | None = None
    # wall seconds the run took: the work the clock drives
    seconds: float = 0.0


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
        self.retries: dict[str, Retry] = {}
        # how many retries each job has run, ever: kept with the clock, so exact after a restart
        self.retried: dict[str, int] = {}
        # outcomes the database refused to record, and whether each ran on the clock
        self._unsaved: list[tuple[JobResult, bool]] = []
        self._lock = asyncio.Lock()
        # wall seconds spent inside jobs since the service started: the work the clock drives
        self.work_seconds = 0.0
        # runs made beside the clock's jobs (Scheduler.beside), recorded with its next save
        self._beside: list[JobResult] = []

    def load(self) -> None:
        """Pick up where the service left off: its clock and when each job last ran."""
        with Session(self.engine) as session:
            stored = read_state(session, CLOCK_STATE)
            self.clock.resume_from(datetime.fromisoformat(stored) if stored else None)
            for run in session.exec(select(JobRun)):
                if run.last_run_at is not None:
                    self.last_run[run.name] = run.last_run_at
            retries = json.loads(read_state(session, RETRIES_STATE) or "{}")
            self.retries = {
                name: Retry(failures, datetime.fromisoformat(due) if due else None)
                for name, (failures, due) in retries.items()
            }
            self.retried = json.loads(read_state(session, RETRIED_STATE) or "{}")

    @property
    def busy(self) -> bool:
        """Whether a job runs now: a copy run logged without its finish may still be going."""
        return self._lock.locked()

    def due_at(self, job: Job) -> datetime | None:
        scheduled = self._scheduled_at(job)
        retry = self.retries.get(job.name)
        if retry is None or retry.due is None:
            return scheduled
        return retry.due if scheduled is None else min(retry.due, scheduled)

    def _scheduled_at(self, job: Job) -> datetime | None:
        last = self.last_run.get(job.name)
        if job.due is not None:
            wanted = job.due()
            if wanted is None or last is None or job.exact:
                return wanted
            # work still due after a run (it failed, say) is tried again a minute later
            return max(wanted, last + RETRY)
        if job.schedule is None:
            return None
        return next_fire(job.schedule, last or self.origin)

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

    def next_visible(self, *, quiet: bool = False) -> datetime | None:
        """The first moment a job would change what others see, as far as can be told now.

        The jobs are walked in time order, each over its schedule: a visible job that would be
        idle at its moment is passed, and with `quiet` so is a job known to change none of this
        service's records then. The first other job ends the walk: from its moment on the
        records may differ, so the first visible job due from then on counts.
        """
        fires = {i: due for i, job in enumerate(self.jobs) if (due := self.due_at(job)) is not None}
        busy: dict[int, datetime | None] = {}
        for _ in range(LOOK_AHEAD):
            if not fires:
                return None
            due, index = min((due, index) for index, due in fires.items())
            job = self.jobs[index]
            if job.visible:
                if index not in busy:  # the records stand while the walk goes on
                    busy[index] = _busy_from(job)
                passed = self._idle(job, due, busy[index])
            else:
                passed = quiet and job.quiet is not None and job.quiet(due)
            if not passed or not self._regular(job):
                break
            assert job.schedule is not None
            fires[index] = next_fire(job.schedule, due)
        return min((due for i, due in fires.items() if self.jobs[i].visible), default=None)

    def _regular(self, job: Job) -> bool:
        """Whether the job's next runs are its schedule's: no work of its own, no retry waiting."""
        waiting = self.retries.get(job.name)
        return job.schedule is not None and job.due is None and (waiting is None or not waiting.due)

    @staticmethod
    def _idle(job: Job, due: datetime, busy_from: datetime | None) -> bool:
        """Whether the job at `due` would change nothing others see, its work due at `busy_from`."""
        if job.busy_from is None or job.schedule is None:
            return False
        return busy_from is None or due < busy_from

    def job(self, name: str) -> Job:
        for job in self.jobs:
            if job.name == name:
                return job
        raise UnknownJobError(name)

    async def advance(
        self, moment: datetime, *, stop_short: bool = False, until_visible: bool = False
    ) -> list[JobResult]:
        """Run, in time order, exactly the jobs that fall due up to `moment`.

        With `stop_short` the jobs due at `moment` itself wait, and so does the clock: another
        service may have to run its own jobs of that moment first. With `until_visible` the
        advance also ends before the first job that would change what others see, and the
        clock waits at the last job run: the others have to be at that job's moment first.
        """
        async with self._lock:
            for job in self.jobs:
                waiting = self.retries.get(job.name)
                if job.prepare is not None and (waiting is None or waiting.due is None):
                    job.prepare()
            results: list[JobResult] = []
            reached = True
            while (upcoming := self.next_due()) is not None and (
                upcoming[0] < moment or (upcoming[0] == moment and not stop_short)
            ):
                due, job = upcoming
                if until_visible and job.visible and not self._idle(job, due, _busy_from(job)):
                    reached = False
                    break
                if self.clock.mode is ClockMode.MANUAL and due > self.clock.now():
                    self.clock.set(due)
                outcome = await self._execute(job, due)
                results.append(outcome)
                self.last_run[job.name] = due
                self._note(job, outcome)
            manual = self.clock.mode is ClockMode.MANUAL
            if manual and reached and moment > self.clock.now() and not stop_short:
                self.clock.set(moment)
            beside, self._beside = self._beside, []
            await to_thread.run_sync(self._save, [*beside, *results], True)
            return results

    async def run_now(self, name: str) -> JobResult:
        job = self.job(name)
        async with self._lock:
            outcome = await self._execute(job, self.clock.now())
            # a run asked for out of schedule ends a retry when it works, and adds none
            if outcome.ok:
                self.retries.pop(job.name, None)
            await to_thread.run_sync(self._save, [outcome], False)
            return outcome

    async def beside(self, name: str, run: Callable[[], Awaitable[Any]]) -> JobResult:
        """Run `run` as a run of the job `name`, beside the clock's jobs rather than after them.

        For a job its own task drives (a followed feed in realtime): recorded as a run on the
        clock is, a failure as a failed run, in the clock's next save; it plans no retry, as
        the task that runs it backs off itself.
        """
        job = self.job(name)
        started = self.clock.now()
        outcome = await self._execute(replace(job, run=run), started)
        self.last_run[job.name] = started
        self._beside.append(outcome)
        return outcome

    async def run_realtime(self, tick: float = 0.2, record_every: float = 2.0) -> None:
        """Run what falls due as the clock moves; a tick that ran nothing records nothing, but
        the clock's time is recorded at least every `record_every` seconds, for a restart.

        A write each tick would hold the database's write lock five times a second, in the way
        of every writer here: a follower's batch, an owner's write.
        """
        recorded = time.monotonic()
        while True:
            quiet = not self._beside and not self._unsaved and not self._due_by(self.clock.now())
            if quiet and time.monotonic() - recorded < record_every:
                await asyncio.sleep(tick)
                continue
            await self.advance(self.clock.now())
            recorded = time.monotonic()
            await asyncio.sleep(tick)

    def _due_by(self, moment: datetime) -> bool:
        upcoming = self.next_due()
        return upcoming is not None and upcoming[0] <= moment

    async def _execute(self, job: Job, due: datetime) -> JobResult:
        started = time.perf_counter()
        try:
            result = await job.run()
        except Exception as error:  # a failed job is recorded; the schedule carries on
            log.warning("job %s failed: %s", job.name, cause(error))
            return JobResult(job.name, due, False, error=cause(error), seconds=self._spent(started))
        return JobResult(job.name, due, True, result=result, seconds=self._spent(started))

    def _spent(self, started: float) -> float:
        seconds = time.perf_counter() - started
        self.work_seconds += seconds
        return seconds

    def _note(self, job: Job, outcome: JobResult) -> None:
        """After a run on the clock: clear the retries, or plan the next one.

        Sidekiq keeps a chain of retries per failed job; here a job has at most one chain, which
        a failed scheduled run starts and a failed retry carries on.
        """
        pending = self.retries.get(job.name)
        if pending is not None and pending.due == outcome.due_at:
            self.retried[job.name] = self.retried.get(job.name, 0) + 1
        if outcome.ok or job.retry is None:
            self.retries.pop(job.name, None)
            return
        if pending is not None and pending.due is not None and pending.due != outcome.due_at:
            return  # a scheduled run failed while a retry waits: the retry keeps its time
        count = pending.failures if pending is not None and pending.due is not None else 0
        if count < job.retry.retries:
            due: datetime | None = outcome.due_at + job.retry.delay(job.name, count)
        else:
            due = None
            log.warning("job %s gave up after %d retries", job.name, job.retry.retries)
        self.retries[job.name] = Retry(count + 1, due)

    def _save(self, outcomes: list[JobResult], scheduled: bool) -> None:
        """Record the clock and what the jobs did, in one transaction for the whole advance.

        A database that refuses the record (full, read-only) keeps nothing; the outcomes wait
        in memory, shown by `history`, until a later save can write them.
        """
        self._unsaved.extend((outcome, scheduled) for outcome in outcomes)
        try:
            with Session(self.engine) as session:
                # one read of every job's row: an advance may record a thousand runs
                runs = {run.name: run for run in session.exec(select(JobRun))}
                for outcome, on_clock in self._unsaved:
                    run = runs.setdefault(outcome.job, JobRun(name=outcome.job))
                    _record(run, outcome, scheduled=on_clock)
                    session.add(run)
                write_state(session, CLOCK_STATE, self.clock.now().isoformat())
                retries = {
                    name: [retry.failures, retry.due.isoformat() if retry.due else None]
                    for name, retry in self.retries.items()
                }
                write_state(session, RETRIES_STATE, json.dumps(retries))
                write_state(session, RETRIED_STATE, json.dumps(self.retried, sort_keys=True))
                session.commit()
        except DBAPIError as error:
            log.warning("could not record %d job runs: %s", len(self._unsaved), cause(error))
            return
        self._unsaved.clear()

    def history(self, session: Session) -> dict[str, JobRun]:
        """When each job last ran, worked and failed: the database's record and what it lacks."""
        runs = {run.name: JobRun.model_validate(run) for run in session.exec(select(JobRun))}
        waiting = [*self._unsaved, *((outcome, True) for outcome in self._beside)]
        for outcome, scheduled in waiting:
            _record(runs.setdefault(outcome.job, JobRun(name=outcome.job)), outcome, scheduled)
        return runs


def _busy_from(job: Job) -> datetime | None:
    return None if job.busy_from is None else job.busy_from()


@functools.lru_cache(maxsize=4096)
def next_fire(schedule: str, after: datetime) -> datetime:
    """A cron schedule's first moment after `after`: asked of every job at every clock step."""
    moment: datetime = croniter(schedule, after).get_next(datetime)
    return moment


def _record(run: JobRun, outcome: JobResult, scheduled: bool) -> None:
    if scheduled:
        run.last_run_at = outcome.due_at
    if outcome.ok:
        run.last_success_at = outcome.due_at
        run.last_error = None
    else:
        run.last_error = outcome.error


def cause(error: Exception) -> str:
    """What went wrong, as a person reads it: a database's own words without the SQL."""
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"the database refused: {error.orig}"
    return str(error)
