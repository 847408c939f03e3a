"""The workload: its file, its rates, its plan, and its events landing at their owners."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lines.becoming_a_teacher.seed import VOLUMES, seed_line
from lines.becoming_a_teacher.topology import LINE, RECORD_SYSTEMS, record_system_for
from lines.becoming_a_teacher.workload import Workload, WorkloadDriver, WorkloadError, load_workload
from lines.becoming_a_teacher.workload.planner import Planned, plan
from lines.becoming_a_teacher.workload.spec import KINDS, OWNERS, Seeded, default_text
from lines.becoming_a_teacher.workload.state import records
from serviceline.model.lines import Size
from serviceline.model.topology import Kind
from serviceline.testing import API, API_TOKEN, LineUnderTest, in_process_line
from tests.builders import busy_workload

CYCLE_START = datetime(2026, 10, 5, tzinfo=UTC)
CYCLE_END = datetime(2027, 10, 4, tzinfo=UTC)
SMALL = {Seeded(name): getattr(VOLUMES[Size.SMALL], name) for name in Seeded}


def test_the_default_names_every_kind_of_event_and_an_owner_for_each() -> None:
    workload = load_workload()
    assert set(workload.events) == set(KINDS)
    assert set(KINDS) <= set(OWNERS)
    assert load_workload("default") == workload


def test_volumes_follow_the_seeded_size_and_a_factor() -> None:
    workload = load_workload()
    large = dict(workload.reference)
    assert workload.volume("application_submitted", large) == 300_000
    assert workload.volume("application_submitted", SMALL) == pytest.approx(800)
    assert load_workload("x0.1").volume("application_submitted", large) == pytest.approx(30_000)


def test_a_file_of_ones_own_loads_and_scales(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(default_text().replace("scale: 1.0", "scale: 2.0"))
    assert load_workload(str(path)).scale == 2
    assert load_workload(f"{path} x0.5").scale == 1


def edited(change: Callable[[dict[str, Any]], None]) -> str:
    data = yaml.safe_load(default_text())
    change(data)
    return yaml.safe_dump(data)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            data = data[part]
        data[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for part in parents:
            data = data[part]
        del data[last]

    return change


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_set("events.course_edited.per_cycle", -1), "events.course_edited.per_cycle"),
        (_set("events.course_painted", {}), "events.course_painted: no such kind"),
        (_set("events.course_edited.months", "nowhere"), "events.course_edited.months"),
        (_set("events.course_edited.weekdays", [1, 1]), "events.course_edited.weekdays"),
        (_set("events.course_edited.volume", 3), "events.course_edited.volume"),
        (_set("events.course_edited.hours", [0] * 24), "events.course_edited.hours: every"),
        (_set("profiles.months.even.smarch", 1), "profiles.months.even.smarch"),
        (_set("decisions.decide_after_days", [5, 1]), "decisions.decide_after_days"),
        (_drop("reference.candidates"), "events.application_submitted.relative_to: no reference"),
        (_set("scale", 0), "scale"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], named: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(edited(change))
    with pytest.raises(WorkloadError) as refused:
        load_workload(str(path))
    assert f"{path}: {named}" in str(refused.value)


@pytest.mark.parametrize(
    ("source", "says"),
    [("missing.yaml", "workload: no file"), ("x0", "scale:"), ("x0.1 x2", "no file")],
)
def test_a_source_that_is_no_workload_is_refused(source: str, says: str) -> None:
    with pytest.raises(WorkloadError, match=says):
        load_workload(source)


def test_a_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("events: [unclosed")
    with pytest.raises(WorkloadError, match="not YAML"):
        load_workload(str(path))


def a_cycle(workload: Workload, seed: int = 1) -> list[Planned]:
    tenth = {name: count // 10 for name, count in workload.reference.items()}
    return plan(workload, tenth, list(workload.events), random.Random(seed), CYCLE_START, CYCLE_END)


def test_the_rates_follow_the_recruitment_cycle() -> None:
    planned = a_cycle(load_workload())
    months = {kind: Counter(e.at.month for e in planned if e.kind == kind) for kind in KINDS}
    applications = months["application_submitted"]
    assert sum(applications[m] for m in (12, 1, 2)) / 3 > 2 * applications[8]
    assert set(months["claim_submitted"]) == {5, 6, 7}
    assert set(months["qts_recommended"]) == {6, 7, 8}
    assert months["course_created"][9] > months["course_created"][3]
    gias = [e for e in planned if OWNERS[e.kind] == "gias"]
    assert gias
    assert all(e.at.weekday() < 5 and 7 <= e.at.hour < 19 for e in gias)
    assert all(CYCLE_START <= e.at < CYCLE_END for e in planned)
    assert planned == sorted(planned)


def test_the_volumes_add_up_over_a_cycle() -> None:
    planned = a_cycle(load_workload())
    submitted = sum(e.kind == "application_submitted" for e in planned)
    assert submitted == pytest.approx(30_000, rel=0.02)


def test_the_plan_is_the_same_for_the_same_seed_and_differs_for_another() -> None:
    workload = load_workload("x0.1")
    assert a_cycle(workload, seed=7) == a_cycle(workload, seed=7)
    assert a_cycle(workload, seed=7) != a_cycle(workload, seed=8)


def a_university_of(system: str) -> str:
    return next(f"9{n:02d}" for n in range(1000) if record_system_for(f"9{n:02d}") == system)


@pytest.mark.anyio
async def test_a_record_system_decides_its_universities_and_the_workload_does_not() -> None:
    async with httpx.AsyncClient() as client:
        clients = dict.fromkeys(("apply", "manage", "sits"), client)
        await decides_as_the_line_runs(clients)


async def decides_as_the_line_runs(clients: dict[str, httpx.AsyncClient]) -> None:
    driver = WorkloadDriver(
        busy_workload(),
        clients,
        API_TOKEN,
        seed=1,
        start=CYCLE_START,
        end=CYCLE_END,
    )
    university, school = a_university_of("sits"), a_university_of("banner")
    driver.state.providers = {
        university: {"provider_type": "university"},
        school: {"provider_type": "university"},
    }
    for number in range(20):
        driver._decide_later(f"a{number}", university, CYCLE_START)
        driver._decide_later(f"b{number}", school, CYCLE_START)
    ours = Counter(e.kind for e in driver.due if e.target[0].startswith("a"))
    theirs = Counter(e.kind for e in driver.due if e.target[0].startswith("b"))
    assert ours == {"offer_accepted": 20}
    assert set(theirs) <= {"offer_made", "application_rejected"}
    assert theirs["offer_made"] > 0
    assert driver.targets_at(CYCLE_END) == {"apply", "manage"}
    assert driver.targets_at(CYCLE_START) == set()


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "refused"), [(204, 0), (404, 1), (503, 1)])
async def test_a_refused_event_is_counted_by_kind(status: int, refused: int) -> None:
    """Refused by the owner, or the owner unavailable (a study's outage), as a user finds it."""
    transport = httpx.MockTransport(lambda _request: httpx.Response(status))
    async with httpx.AsyncClient(transport=transport, base_url="http://dqt") as client:
        driver = name_changes({"dqt": client})
        assert await driver.fire(CYCLE_START) == 1
        assert driver.failures == Counter({"teacher_name_changed": refused} if refused else {})
        assert driver.counts["teacher_name_changed"] == 1 - refused
        assert driver.next_at() is None


@pytest.mark.anyio
async def test_an_owner_not_answering_refuses_the_event() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        driver = name_changes({"dqt": client})
        assert await driver.fire(CYCLE_START) == 1
        assert driver.failures == Counter({"teacher_name_changed": 1})


@pytest.mark.anyio
async def test_register_unavailable_refuses_its_events_and_keeps_yesterdays_trainees() -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(503))
    async with httpx.AsyncClient(transport=transport, base_url="http://register") as client:
        driver = WorkloadDriver(
            busy_workload(),
            {"register": client},
            API_TOKEN,
            seed=1,
            start=CYCLE_START,
            end=CYCLE_END,
        )
        driver.state.trainees.add("a1b2c3")
        driver.due = [Planned(CYCLE_START, 0, "trainee_updated")]
        assert await driver.fire(CYCLE_START) == 1
        assert driver.failures == Counter({"trainee_updated": 1})
        assert driver.state.trainees_read_on is None  # read again once Register answers
        assert "a1b2c3" in driver.state.trainees


@pytest.mark.anyio
async def test_a_broken_owner_stops_the_run() -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(500))
    async with httpx.AsyncClient(transport=transport, base_url="http://dqt") as client:
        driver = name_changes({"dqt": client})
        with pytest.raises(httpx.HTTPStatusError):
            await driver.fire(CYCLE_START)


def name_changes(clients: dict[str, httpx.AsyncClient]) -> WorkloadDriver:
    """A driver with one name change due at the cycle's start, for a teacher it knows."""
    driver = WorkloadDriver(
        busy_workload(), clients, API_TOKEN, seed=1, start=CYCLE_START, end=CYCLE_END
    )
    driver.state.teachers.add("1000001")
    driver.due = [Planned(CYCLE_START, 0, "teacher_name_changed")]
    return driver


MENTORING = ("placements", "claims")


async def listing(line: LineUnderTest, service: str, entity: str) -> dict[str, dict[str, Any]]:
    return {row[LINE.entity(entity).key]: row async for row in records(line[service], entity, API)}


async def run(line: LineUnderTest, driver: WorkloadDriver, end: datetime) -> int:
    fired = 0
    while (moment := driver.next_at()) is not None:
        targets = driver.targets_at(moment)
        assert targets
        await line.control.advance(to=moment)
        fired += await driver.fire(moment)
        assert driver.next_at() is None or driver.next_at() > moment  # type: ignore[operator]
    await line.control.advance(to=end)
    return fired


@pytest.mark.anyio
async def test_every_kind_of_event_lands_at_its_owner(state_dir: Path) -> None:
    names = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM]
    async with in_process_line(names, state_dir) as line:
        await seed_line(line.clients, line.control, API_TOKEN, Size.SMALL, seed=3)
        start = await line.control.now()
        # before the nightly school import overwrites the schools' own edits
        end = start + timedelta(hours=23)
        driver = WorkloadDriver(
            busy_workload(offer_share=0.5, reject_share=0.5),
            line.clients,
            API_TOKEN,
            seed=5,
            start=start,
            end=end,
        )
        await driver.prepare()
        planned = len(driver.due)
        fired = await run(line, driver, end)

        assert fired >= planned
        assert sum(driver.counts.values()) + sum(driver.failures.values()) == fired
        # a small line may hold no draft, or no site unused, to remove
        assert set(KINDS) - {"draft_deleted", "site_removed"} <= set(driver.counts)
        assert set(KINDS) <= set(driver.counts) | set(driver.failures)
        assert {"offer_made", "application_rejected"} <= set(driver.counts)
        assert {"offer_accepted", "offer_declined"} & set(driver.counts)
        await holds_what_the_driver_did(line, driver)


async def holds_what_the_driver_did(line: LineUnderTest, driver: WorkloadDriver) -> None:
    state, counts = driver.state, driver.counts
    courses = await listing(line, "publish", "course")
    assert set(courses) == set(state.courses)
    for uuid, course in state.courses.items():
        held = courses[uuid]
        assert (held["name"], held["state"], held["study_mode"], held["site_codes"]) == (
            course.name,
            course.state,
            course.study_mode,
            course.site_codes,
        )
    sites = await listing(line, "publish", "site")
    assert set(sites) == {uuid for held in state.sites.values() for uuid in held}
    partnerships = await listing(line, "publish", "partnership")
    assert set(partnerships) == set(state.partnerships)
    schools = await listing(line, "gias", "school")
    for urn, school in state.schools.items():
        for field in ("status_code", "phase_code", "street"):
            assert schools[urn][field] == school[field], (urn, field)
    candidates = await listing(line, "apply", "candidate")
    assert set(candidates) == set(state.candidates.items)
    statuses = Counter(a["status"] for a in (await listing(line, "apply", "application")).values())
    assert statuses["withdrawn"] >= counts["application_withdrawn"]
    trainees = Counter(t["state"] for t in (await listing(line, "register", "trainee")).values())
    assert trainees["deferred"] == counts["trainee_deferred"]
    assert trainees["withdrawn"] == counts["trainee_withdrawn"]
    assert trainees["recommended_for_award"] + trainees["awarded"] == counts["qts_recommended"]
    for service in MENTORING:
        mentors = await listing(line, service, "mentor")
        assert {trn: sorted(m["school_urns"]) for trn, m in mentors.items()} == {
            trn: sorted(urns) for trn, urns in state.mentors[service].items()
        }
        edited = [c for c in await copies(line, service) if "telephone" in c["local_edits"]]
        assert len(edited) >= 1
    placements = await listing(line, "placements", "placement")
    claims = await listing(line, "claims", "claim")
    assert len(placements) >= counts["placement_created"]
    assert sum(c["status"] == "submitted" for c in claims.values()) >= counts["claim_submitted"]


async def copies(line: LineUnderTest, service: str) -> list[dict[str, Any]]:
    page = (await line[service].get("/copies/school", params={"limit": 5000}, headers=API)).json()
    rows: list[dict[str, Any]] = page["copies"]
    return rows


def test_record_systems_are_named_in_the_topology() -> None:
    assert set(RECORD_SYSTEMS) <= {s.name for s in LINE.services}
