"""The fast clock changes how much is asked, never what happens: the same jobs, the same copies."""

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic_core import to_jsonable_python

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.drift import Auditor
from serviceline.audit.lag import LagCollector
from serviceline.testing import (
    ADMIN,
    API,
    AUDITOR,
    LineUnderTest,
    in_process_line,
)
from tests import builders

pytestmark = pytest.mark.anyio

START = datetime(2026, 10, 5, tzinfo=UTC)
SERVICES = ["gias", "publish", "find", "apply", "manage", "register", "dqt", "placements"]
Change = Callable[[LineUnderTest], Awaitable[None]]


def answered(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def was_skipped(job: dict[str, Any]) -> bool:
    return isinstance(job["result"], dict) and bool(job["result"].get("skipped"))


def made(folder: Path) -> Path:
    folder.mkdir()
    return folder


def job_runs(ran: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, bool, Any]]]:
    """Each service's jobs in the order they ran, with what each did (a skip is not told).

    Nor is the id of a run's log: a skip's is written as the advance ends, after it reports;
    the copy runs' own log (`state`) shows the ids in order.
    """
    runs: dict[str, list[tuple[str, str, bool, Any]]] = {}
    for job in ran:
        result = job["result"]
        if isinstance(result, dict):
            result = {k: v for k, v in result.items() if k not in {"skipped", "run_id"}}
        # a failed run shows why, so a difference between the two ways says what went wrong
        outcome = result if job["ok"] else job["error"]
        runs.setdefault(job["service"], []).append((job["job"], job["due_at"], job["ok"], outcome))
    return runs


async def seeded(line: LineUnderTest) -> dict[str, str]:
    """Schools, two providers with sites and courses, a candidate: copied once everywhere."""
    schools = [builders.school(), builders.school("100001", name="Bow School")]
    answered(await line["gias"].post("/schools/batch", json=schools, headers=API), 201)
    await line.control.run_job("gias", "gias.daily_extract")
    await builders.publish_provider(line, builders.provider(), builders.site(), builders.site("B"))
    uuid = await builders.publish_course(
        line, builders.provider("1TZ"), builders.course("X100"), builders.site()
    )
    first = answered(
        await line["publish"].post("/providers/2FR/courses", json=builders.course(), headers=API),
        201,
    )
    person = builders.dqt_person()
    answered(await line["dqt"].post("/v3/teachers/batch", json=[person], headers=API), 201)
    candidate = answered(
        await line["apply"].post("/candidates", json=builders.candidate(), headers=API), 201
    )
    await line.control.sync()
    return {"course": uuid, "other": first["uuid"], "candidate": candidate["id"]}


def changes(keys: dict[str, str]) -> list[tuple[timedelta, Change]]:
    """Changes through the owners' own APIs, each at its moment after the start."""

    def rename(name: str) -> Change:
        async def change(line: LineUnderTest) -> None:
            path = f"/courses/{keys['course']}"
            answered(await line["publish"].patch(path, json={"name": name}, headers=API))

        return change

    async def new_course(line: LineUnderTest) -> None:
        course = builders.course("Y200", name="History")
        answered(
            await line["publish"].post("/providers/2FR/courses", json=course, headers=API), 201
        )

    async def delete_site(line: LineUnderTest) -> None:
        sites = answered(await line["publish"].get("/records/site", headers=AUDITOR))
        [site] = [s for s in sites["records"] if (s["provider_code"], s["code"]) == ("2FR", "B")]
        deleted = await line["publish"].delete(f"/sites/{site['uuid']}", headers=API)
        assert deleted.status_code == 204, deleted.text

    async def move_start(line: LineUnderTest) -> None:
        # Apply's copy of the course touches the application to it: Apply's own feed moves
        path = f"/courses/{keys['other']}"
        answered(await line["publish"].patch(path, json={"start_date": "2027-10-01"}, headers=API))

    async def apply_for(line: LineUnderTest) -> None:
        body = builders.application(keys["candidate"], keys["other"])
        answered(await line["apply"].post("/applications", json=body, headers=API), 201)

    async def edit_school_copy(line: LineUnderTest) -> None:
        body = {"telephone": "020 7000 0000"}
        answered(await line["placements"].patch("/copies/school/100000", json=body, headers=API))

    return [
        (timedelta(hours=3, minutes=7), rename("Physics with maths")),
        (timedelta(hours=9, minutes=30), new_course),  # a moment copies fall due at
        (timedelta(hours=20), edit_school_copy),
        (timedelta(days=1, hours=2, minutes=41), delete_site),
        (timedelta(days=1, hours=11), apply_for),
        (timedelta(days=1, hours=11, minutes=1), rename("Physics")),
        (timedelta(days=1, hours=15, minutes=3), move_start),
    ]


async def state(line: LineUnderTest, auditor: Auditor) -> dict[str, Any]:
    """Every consumer's copies, cursors and job records, and the drift auditor's report."""
    found: dict[str, Any] = {}
    for edge in LINE.edges:
        if edge.consumer in line.clients and edge.owner in line.clients:
            copies = await line[edge.consumer].get(f"/copies/{edge.entity}", headers=AUDITOR)
            found[f"copies {edge.name}"] = answered(copies)
    for name in line.clients:
        found[f"edges {name}"] = answered(await line[name].get("/admin/edges", headers=ADMIN))
        found[f"jobs {name}"] = answered(await line[name].get("/admin/jobs", headers=ADMIN))
    found["drift"] = (await auditor.audit()).to_json()
    collector = LagCollector(line.control)
    await collector.collect()
    # which runs were skipped is the one thing the fast clock may change
    collector.logs.runs = [replace(copy_run, skipped=False) for copy_run in collector.logs.runs]
    lag = collector.report(await line.control.now()).to_json()
    for figures in lag["edges"].values():
        del figures["cost"]["skipped_runs"]
    found["lag"] = lag
    found["applied"] = to_jsonable_python([asdict(row) for row in collector.logs.applied])
    found["copy runs"] = to_jsonable_python([asdict(row) for row in collector.logs.runs])
    settled: dict[str, Any] = anonymous(found)
    return settled


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
APPLICATION_ID = re.compile(r"\b[0-9a-f]{10}\b")


def anonymous(value: Any) -> Any:
    """`value` without the random ids Publish and Apply give each line, lists in a settled order."""
    if isinstance(value, str):
        return APPLICATION_ID.sub("<id>", UUID.sub("<uuid>", value))
    if isinstance(value, dict):
        return {key: anonymous(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((anonymous(item) for item in value), key=json.dumps)
    return value


async def lived(
    state_dir: Path, *, skip: bool, steps: timedelta, **settings: Any
) -> tuple[Any, ...]:
    """Two days of the line with its changes, the clock moved in `steps` between them, drift
    audited before each change: the fast line's auditor gives again what nobody wrote since."""
    async with in_process_line(SERVICES, state_dir, skip_quiet_polls=skip, **settings) as line:
        keys = await seeded(line)
        auditor = line.auditor(remember=skip)
        drifts: list[dict[str, Any]] = []
        ran: list[dict[str, Any]] = []
        moment = START
        planned: list[tuple[timedelta, Change | None]] = [*changes(keys), (timedelta(days=2), None)]
        for offset, change in planned:
            while moment + steps < START + offset:
                moment += steps
                ran += await line.control.advance(to=moment)
            ran += await line.control.advance(to=START + offset)
            moment = START + offset
            drifts.append((await auditor.audit()).to_json())
            if change is not None:
                await change(line)
        skipped = sum(1 for job in ran if was_skipped(job))
        found = {
            **await state(line, auditor),
            "drift before each change": [anonymous(d) for d in drifts],
        }
        return job_runs(ran), found, skipped, line.control.calls


async def test_skipping_quiet_polls_leaves_every_copy_cursor_job_and_drift_as_polling_does(
    tmp_path: Path,
) -> None:
    steps = timedelta(hours=5)
    slow_runs, slow_state, none_skipped, _ = await lived(
        made(tmp_path / "slow"), skip=False, steps=steps
    )
    fast_runs, fast_state, skipped, _ = await lived(made(tmp_path / "fast"), skip=True, steps=steps)
    assert none_skipped == 0
    assert skipped > 100  # most polls of a quiet owner were never made
    assert fast_runs.keys() == slow_runs.keys()
    for service, runs in slow_runs.items():
        assert fast_runs[service] == runs, service
    assert fast_state.keys() == slow_state.keys()
    for name, value in slow_state.items():
        assert fast_state[name] == value, name


async def test_followed_feeds_run_the_same_whether_quiet_owners_are_asked_or_not(
    tmp_path: Path,
) -> None:
    """Under a manual clock a followed feed is the clock's job: both lines run it alike, and
    each change it carries reaches its copy at the moment it was made."""
    follow = {"edge_overrides": {"*": "feed@follow"}}
    steps = timedelta(hours=5)
    slow = await lived(made(tmp_path / "slow"), skip=False, steps=steps, **follow)
    fast = await lived(made(tmp_path / "fast"), skip=True, steps=steps, **follow)
    (slow_runs, slow_state, _, _), (fast_runs, fast_state, _, _) = slow, fast
    assert fast_runs == slow_runs
    assert fast_state.keys() == slow_state.keys()
    for name, value in slow_state.items():
        assert fast_state[name] == value, name
    followed = [e for e in LINE.with_overrides(follow["edge_overrides"]).edges if e.follow]
    assert any(job == followed[0].name for job, *_ in fast_runs["find"])
    lags = fast_state["lag"]["edges"]
    measured = [lags[e.name]["lag_seconds"] for e in followed if e.name in lags]
    delivered = [summary for summary in measured if summary is not None]
    assert len(delivered) >= 3  # Find's courses, Apply's courses and sites at least
    assert all(summary["max"] == 0 for summary in delivered)


async def test_an_advance_for_some_services_runs_what_a_full_one_runs_before_their_writes(
    tmp_path: Path,
) -> None:
    """A writer's advance brings Publish to its moment; the rest catch up at the next advance."""
    outcomes = []
    for folder, only in (("full", None), ("only", {"publish"})):
        async with in_process_line(
            SERVICES, made(tmp_path / folder), skip_quiet_polls=False
        ) as line:
            keys = await seeded(line)
            # 09:30: Find's and Apply's copies of Publish fall due as the course is written
            written = START + timedelta(hours=9, minutes=30)
            first = await line.control.advance(to=written, only=only)
            clocks = await line.control.clocks()
            behind = {name for name, view in clocks.items() if view["now"] < written.isoformat()}
            course = builders.course("Y200", name="History")
            path = "/providers/2FR/courses"
            answered(await line["publish"].post(path, json=course, headers=API), 201)
            line.control.touched({"publish"})
            rest = await line.control.advance(to=START + timedelta(hours=14))
            calls = line.control.calls
            found = await state(line, line.auditor())
            outcomes.append((job_runs(first + rest), found, behind, keys, calls))
    (full_runs, full_state, none_behind, _, _), (runs, found, behind, _, _) = outcomes
    assert none_behind == set()
    assert behind  # the others were left where their jobs were
    assert "publish" not in behind
    assert runs == full_runs
    assert found == full_state


async def test_a_decision_job_with_nothing_to_decide_moves_no_other_clock(state_dir: Path) -> None:
    async with in_process_line(["apply", "sits"], state_dir) as line:
        ran = await line.control.advance(by="6h")
        decided = [job for job in ran if job["job"] == "sits.decide"]
        assert len(decided) == 24
        # each quarter hour sits learns it has nothing to decide: no step for Apply
        assert line.control.calls < 40  # Apply moved at each would make it over 48
        jobs = answered(await line["sits"].get("/admin/jobs", headers=ADMIN))
        [decide] = [job for job in jobs if job["name"] == "sits.decide"]
        assert decide["last_run_at"] == "2026-10-05T05:50:00Z"
