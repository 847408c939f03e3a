import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from serviceline.runtime.clock import ClockError, SimulatedClock, parse_duration
from serviceline.runtime.settings import ClockMode
from serviceline.testing import ADMIN, in_process_line

START = datetime(2026, 10, 5, tzinfo=UTC)


def test_manual_clock_moves_only_when_told_and_never_back() -> None:
    clock = SimulatedClock(ClockMode.MANUAL, START)
    assert clock.now() == START
    clock.set(START + timedelta(hours=1))
    assert clock.now() == START + timedelta(hours=1)
    with pytest.raises(ClockError, match="cannot move the clock back"):
        clock.set(START)


def test_realtime_clock_runs_at_its_speed() -> None:
    # started two wall seconds ago at an hour a second: two simulated hours have passed
    clock = SimulatedClock(ClockMode.REALTIME, START, speed=3600, anchor=time.time() - 2)
    elapsed = clock.now() - START
    assert timedelta(hours=2) <= elapsed < timedelta(hours=2, minutes=10)
    with pytest.raises(ClockError, match="realtime"):
        clock.set(START + timedelta(days=1))


def test_a_restarted_clock_resumes_from_the_time_recorded() -> None:
    clock = SimulatedClock(ClockMode.MANUAL, START)
    clock.resume_from(START + timedelta(days=2))
    assert clock.now() == START + timedelta(days=2)
    clock.resume_from(START)
    assert clock.now() == START + timedelta(days=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("6h", timedelta(hours=6)),
        ("1d6h", timedelta(days=1, hours=6)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "m", "1y", "-1h", "0m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ClockError, match="duration"):
        parse_duration(text)


@pytest.mark.anyio
async def test_a_realtime_line_runs_its_jobs_as_simulated_time_passes(state_dir: Path) -> None:
    async with in_process_line(
        ["gias"], state_dir, clock_mode=ClockMode.REALTIME, clock_speed=200_000
    ) as line:
        deadline = time.monotonic() + 10
        runs: list[dict[str, object]] = []
        while time.monotonic() < deadline and not runs:
            await anyio.sleep(0.2)
            jobs = (await line["gias"].get("/admin/jobs", headers=ADMIN)).json()
            runs = [j for j in jobs if j["name"] == "gias.daily_extract" and j["last_run_at"]]
        assert runs, "the daily extract never ran on a realtime clock"
        assert runs[0]["last_run_at"] == "2026-10-06T00:00:00Z"
        refused = await line["gias"].post("/admin/clock/advance", json={"by": "1h"}, headers=ADMIN)
        assert refused.status_code == 409
        assert "realtime" in refused.json()["detail"]
