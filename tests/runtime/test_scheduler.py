"""The simulated clock: every service runs exactly the jobs that fall due, in time order."""

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import create_tables, make_engine
from serviceline.runtime.scheduler import Job, Retry, RetryPolicy, Scheduler
from serviceline.runtime.settings import ClockMode, sqlite_url
from serviceline.stack.control import ControlError
from serviceline.testing import ADMIN, API, LineUnderTest, in_process_line, refusal
from tests import builders

pytestmark = pytest.mark.anyio


def runs(ran: list[dict[str, Any]]) -> list[tuple[str, str, str, bool]]:
    return [(job["service"], job["job"], job["due_at"], job["ok"]) for job in ran]


async def school_status(line: LineUnderTest) -> str:
    copied = await line["publish"].get("/copies/school/100000")
    assert copied.status_code == 200, copied.text
    status: str = copied.json()["status_code"]
    return status


async def test_a_school_closed_at_ten_reaches_publish_at_the_next_days_import(
    state_dir: Path,
) -> None:
    async with in_process_line(["gias", "publish"], state_dir) as line:
        assert (await line["gias"].post("/schools", json=builders.school(), headers=API)).is_success

        ran = await line.control.advance(by="1d3h")
        imports = [run for run in runs(ran) if run[1] == "gias.school.publish"]
        assert [run for run in runs(ran) if run not in imports] == [
            ("gias", "feed.prune", "2026-10-05T04:00:00+00:00", True),
            ("publish", "feed.prune", "2026-10-05T04:00:00+00:00", True),
            ("gias", "gias.daily_extract", "2026-10-06T00:00:00+00:00", True),
        ]
        # on the first morning no file for the day before had been published yet: the import
        # was retried all day, ever less often, and the next morning's schedule found the file
        assert "404" in ran[0]["error"]
        assert [ok for *_, ok in imports] == [False] * 14 + [True]
        assert imports[0][2] == "2026-10-05T02:30:00+00:00"
        assert imports[-1][2] == "2026-10-06T02:30:00+00:00"
        times = [datetime.fromisoformat(due) for _, _, due, _ in imports]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times[:-1])]
        assert gaps == sorted(gaps)
        [extract] = [job for job in ran if job["job"] == "gias.daily_extract"]
        assert extract["result"]["day"] == "2026-10-05"
        assert await school_status(line) == "1"

        await line.control.advance(to=datetime(2026, 10, 6, 10, tzinfo=UTC))
        closed = {"status_code": "2", "close_date": "2026-10-06"}
        assert (await line["gias"].patch("/schools/100000", json=closed, headers=API)).is_success

        ran = await line.control.advance(to=datetime(2026, 10, 7, 2, 29, tzinfo=UTC))
        assert runs(ran) == [("gias", "gias.daily_extract", "2026-10-07T00:00:00+00:00", True)]
        assert await school_status(line) == "1"

        ran = await line.control.advance(by="1m")
        assert runs(ran) == [("publish", "gias.school.publish", "2026-10-07T02:30:00+00:00", True)]
        assert await school_status(line) == "2"

        # every clock reads the target, and a job already run does not run again
        assert {view["now"] for view in (await line.control.clocks()).values()} == {
            "2026-10-07T02:30:00Z"
        }
        again = await line["publish"].post(
            "/admin/clock/advance", json={"to": "2026-10-07T02:30:00Z"}, headers=ADMIN
        )
        assert again.json()["ran"] == []


async def test_a_service_runs_its_own_jobs_in_time_order(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        response = await line["publish"].post(
            "/admin/clock/advance", json={"by": "2d"}, headers=ADMIN
        )
        body = response.json()
        ran = [(job["job"], job["due_at"]) for job in body["ran"]]
        assert ran == sorted(ran, key=lambda job: job[1])
        assert [job for job in ran if job[0] == "feed.prune"] == [
            ("feed.prune", "2026-10-05T04:00:00+00:00"),
            ("feed.prune", "2026-10-06T04:00:00+00:00"),
        ]
        # GIAS is not running: each import fails, and is retried in between its schedules
        imports = [due for job, due in ran if job == "gias.school.publish"]
        assert imports[0] == "2026-10-05T02:30:00+00:00"
        assert "2026-10-06T02:30:00+00:00" in imports
        assert len(imports) > 2
        jobs = (await line["publish"].get("/admin/jobs", headers=ADMIN)).json()
        [gias_import] = [job for job in jobs if job["name"] == "gias.school.publish"]
        assert body["now"] == "2026-10-07T00:00:00Z"
        assert body["next_due"] == gias_import["due_at"] == "2026-10-07T02:30:00Z"
        assert gias_import["retry_due_at"] > gias_import["due_at"]
        assert gias_import["failures"] == len(imports) - 1  # the second schedule's run is no retry
        assert body["next_visible_due"] == "2026-10-07T04:00:00Z"  # a copy changes nothing shared


async def test_the_clock_never_moves_back(state_dir: Path) -> None:
    async with in_process_line(["gias", "publish"], state_dir) as line:
        gias = line["gias"]
        await line.control.advance(by="1d")
        back = await gias.post(
            "/admin/clock/advance", json={"to": "2026-10-05T12:00:00Z"}, headers=ADMIN
        )
        assert back.status_code == 409
        assert "before the clock" in back.json()["detail"]
        with pytest.raises(ControlError, match="409"):
            await line.control.advance(to=datetime(2026, 10, 5, 12, tzinfo=UTC))
        assert {view["now"] for view in (await line.control.clocks()).values()} == {
            "2026-10-06T00:00:00Z"
        }


async def test_a_time_without_an_offset_is_read_as_utc(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        moved = await line["gias"].post(
            "/admin/clock/advance", json={"to": "2026-10-05T06:00:00"}, headers=ADMIN
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["now"] == "2026-10-05T06:00:00Z"
        await line.control.advance(to=datetime(2026, 10, 5, 7))
        assert await line.control.now() == datetime(2026, 10, 5, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    "by", ["", "10", "10x", "1y", "0m", "-1h", "99999999999w", "5000000d", "300w"]
)
async def test_a_bad_duration_is_refused_naming_by(state_dir: Path, by: str) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        refused = await line["gias"].post("/admin/clock/advance", json={"by": by}, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert refusal(refused).startswith("by: ")
        clock = (await line["gias"].get("/admin/clock", headers=ADMIN)).json()
        assert clock["now"] == "2026-10-05T00:00:00Z"


@pytest.mark.parametrize(
    "body", [{}, {"by": "1h", "to": "2026-10-06T00:00:00Z"}, {"to": "tomorrow"}]
)
async def test_advance_needs_exactly_one_of_to_or_by(state_dir: Path, body: Any) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        refused = await line["gias"].post("/admin/clock/advance", json=body, headers=ADMIN)
        assert refused.status_code == 422
        assert any(
            "to" in error["loc"] or "'to'" in error["msg"] for error in refused.json()["detail"]
        )


ADMIN_CALLS = [
    ("GET", "/admin/clock", None),
    ("POST", "/admin/clock/advance", {"by": "1d"}),
    ("GET", "/admin/jobs", None),
    ("POST", "/admin/jobs/gias.daily_extract/run", None),
    ("GET", "/admin/edges", None),
    ("POST", "/admin/feed/prune", {"keep": 0}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_CALLS)
async def test_admin_endpoints_need_the_admin_token(
    state_dir: Path, method: str, path: str, body: dict[str, Any] | None
) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]

        async def call(headers: dict[str, str]) -> httpx.Response:
            return await gias.request(method, path, json=body, headers=headers)

        missing = await call({})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        assert (await call(API)).status_code == 403
        assert (await call({"Authorization": "Bearer guess"})).status_code == 403
        assert (await gias.get("/admin/clock", headers=ADMIN)).json()["now"] == (
            "2026-10-05T00:00:00Z"
        )
        assert (await call(ADMIN)).status_code == 200


async def test_a_restarted_service_resumes_its_clock_and_job_history(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        ran = await line.control.advance(by="1d")
        assert [job["job"] for job in ran] == ["feed.prune", "gias.daily_extract"]
    async with in_process_line(["gias"], state_dir) as line:
        assert await line.control.now() == datetime(2026, 10, 6, tzinfo=UTC)
        listed = await line["gias"].get("/admin/jobs", headers=ADMIN)
        jobs = {job["name"]: job for job in listed.json()}
        assert jobs["gias.daily_extract"]["last_run_at"] == "2026-10-06T00:00:00Z"
        assert await line.control.advance(by="1h") == []


async def test_an_import_that_failed_while_its_owner_was_down_is_retried_once_it_is_back(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "register"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        outage = {"kind": "fail", "until": "2026-10-05T06:00:00Z"}
        assert (await line["publish"].post("/admin/faults", json=outage, headers=ADMIN)).is_success

        down = await line.control.advance(to=datetime(2026, 10, 5, 6, tzinfo=UTC))
        failed = [run for run in runs(down) if run[1] == "publish.course.register"]
        assert failed[0] == (
            "register",
            "publish.course.register",
            "2026-10-05T03:00:00+00:00",
            False,
        )
        assert len(failed) > 1
        assert not any(ok for *_, ok in failed)
        assert (await line["register"].get("/copies/course")).json()["copies"] == []
        jobs = (await line["register"].get("/admin/jobs", headers=ADMIN)).json()
        [job] = [job for job in jobs if job["name"] == "publish.course.register"]
        assert (job["failures"], job["retries_left"]) == (len(failed), 26 - len(failed))
        assert "publish answered 503" in job["last_error"]
        retry_due = job["retry_due_at"]
        assert job["due_at"] == retry_due < "2026-10-06T03:00:00Z"

        # Publish is back: the pending retry, not tomorrow's 03:00 run, applies the course
        ran = await line.control.advance(to=datetime(2026, 10, 6, 2, tzinfo=UTC))
        applied = [run for run in runs(ran) if run[1] == "publish.course.register"]
        assert applied == [
            ("register", "publish.course.register", retry_due.replace("Z", "+00:00"), True)
        ]
        assert (await line["register"].get("/copies/course")).json()["copies"] != []
        jobs = (await line["register"].get("/admin/jobs", headers=ADMIN)).json()
        [job] = [job for job in jobs if job["name"] == "publish.course.register"]
        assert (job["failures"], job["retry_due_at"], job["last_error"]) == (0, None, None)
        assert job["due_at"] == "2026-10-06T03:00:00Z"


async def test_retries_give_up_after_the_configured_count(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path, "retries"))
    create_tables(engine, [])
    start = datetime(2026, 10, 5, tzinfo=UTC)
    clock = SimulatedClock(ClockMode.MANUAL, start)

    async def fail() -> None:
        raise RuntimeError("the owner is down")

    job = Job("copy", "0 3 * * *", fail, retry=RetryPolicy(retries=2))
    scheduler = Scheduler(engine, clock, [job], start)
    results = await scheduler.advance(datetime(2026, 10, 6, 2, tzinfo=UTC))
    # Sidekiq's count**4 + 15 + rand(10) * (count + 1), its rand fixed by the job's name: 9, 9
    assert [(r.due_at.isoformat(), r.ok) for r in results] == [
        ("2026-10-05T03:00:00+00:00", False),
        ("2026-10-05T03:00:24+00:00", False),
        ("2026-10-05T03:00:58+00:00", False),
    ]
    # given up: nothing more until the next schedule, which starts over
    assert scheduler.retries["copy"] == Retry(3, None)
    assert scheduler.due_at(job) == datetime(2026, 10, 6, 3, tzinfo=UTC)
    # the two retries are counted, and the count outlives a restart
    assert scheduler.retried == {"copy": 2}
    reloaded = Scheduler(engine, clock, [job], start)
    reloaded.load()
    assert reloaded.retries == scheduler.retries
    assert reloaded.retried == {"copy": 2}


async def test_an_advance_until_visible_ends_before_a_job_others_would_see(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path, "visible"))
    create_tables(engine, [])
    start = datetime(2026, 10, 5, tzinfo=UTC)
    clock = SimulatedClock(ClockMode.MANUAL, start)
    busy_from = datetime(2026, 10, 5, 1, tzinfo=UTC)

    async def work() -> None:
        return None

    jobs = [
        Job("copy", "*/10 * * * *", work, visible=False),
        # a decision job with nothing to decide before one o'clock
        Job("decide", "5,35 * * * *", work, busy_from=lambda: busy_from),
    ]
    scheduler = Scheduler(engine, clock, jobs, start)
    target = datetime(2026, 10, 5, 3, tzinfo=UTC)
    ran = await scheduler.advance(target, stop_short=True, until_visible=True)
    # the idle decisions ran as they fell due; the first that decides waits, and so does the clock
    assert [(r.job, r.due_at.strftime("%H:%M")) for r in ran] == [
        ("decide", "00:05"),
        ("copy", "00:10"),
        ("copy", "00:20"),
        ("copy", "00:30"),
        ("decide", "00:35"),
        ("copy", "00:40"),
        ("copy", "00:50"),
        ("copy", "01:00"),
    ]
    assert clock.now() == datetime(2026, 10, 5, 1, tzinfo=UTC)
    assert scheduler.next_visible() == datetime(2026, 10, 5, 1, 5, tzinfo=UTC)
    # without it the same advance runs every job due before the target
    rest = await scheduler.advance(target, stop_short=True)
    assert rest[0].job == "decide"
    assert rest[-1].due_at == datetime(2026, 10, 5, 2, 50, tzinfo=UTC)


async def test_the_next_visible_moment_passes_idle_jobs_and_copies_known_to_find_nothing(
    tmp_path: Path,
) -> None:
    engine = make_engine(sqlite_url(tmp_path, "ahead"))
    create_tables(engine, [])
    start = datetime(2026, 10, 5, tzinfo=UTC)
    clock = SimulatedClock(ClockMode.MANUAL, start)
    busy_from = datetime(2026, 10, 5, 3, tzinfo=UTC)
    changes_from = datetime(2026, 10, 5, 1, 30, tzinfo=UTC)

    async def work() -> None:
        return None

    jobs = [
        # a copy that finds nothing until half past one
        Job("copy", "20 * * * *", work, visible=False, quiet=lambda at: at < changes_from),
        Job("decide", "5,35 * * * *", work, busy_from=lambda: busy_from),
    ]
    scheduler = Scheduler(engine, clock, jobs, start)

    def at(hour: int, minute: int) -> datetime:
        return datetime(2026, 10, 5, hour, minute, tzinfo=UTC)

    # without knowing what the copies find, the first copy may change the records: the first
    # decision after it counts, though it would be idle as things stand
    assert scheduler.next_visible() == at(0, 35)
    # copies known to find nothing until the one at 02:20, whose first decision after counts
    assert scheduler.next_visible(quiet=True) == at(2, 35)
    # with nothing in the way, the first decision due as the records stand
    jobs[0] = Job("copy", "20 * * * *", work, visible=False, quiet=lambda at: True)
    assert scheduler.next_visible(quiet=True) == at(3, 5)
    busy_from = at(1, 50)
    assert scheduler.next_visible(quiet=True) == at(2, 5)
    # a job run at its own moments, whose next runs no schedule gives, ends the walk
    jobs.append(Job("poll", None, work, due=lambda: at(0, 50), visible=False))
    assert scheduler.next_visible(quiet=True) == at(1, 5)
