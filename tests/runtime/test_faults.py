"""Faults set through /admin/faults: whatever the feed does, each change lands exactly once."""

from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.faults import FaultKind, Faults, FaultSpec
from serviceline.runtime.settings import CLOCK_START, ClockMode
from serviceline.testing import ADMIN, API, LineUnderTest, in_process_line, names_field
from tests import builders
from tests.consumer.test_copier import (
    FIND_COURSES,
    FIND_TARGETS,
    consumer,
    copies,
    copy_view,
    cursor,
    forward,
    owner_view,
    publish_courses,
)

pytestmark = pytest.mark.anyio

CODES = ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"]


async def set_fault(client: httpx.AsyncClient, **spec: Any) -> dict[str, Any]:
    response = await client.post("/admin/faults", json=spec, headers=ADMIN)
    assert response.status_code == 201, response.text
    fault: dict[str, Any] = response.json()
    return fault


async def faults(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = (await client.get("/admin/faults", headers=ADMIN)).json()
    return listed


async def find_copies(line: LineUnderTest) -> dict[str, dict[str, Any]]:
    """Find's course copies, projected onto the edge's columns as `owner_view` gives Publish's."""
    body = (await line["find"].get("/copies/course", params={"limit": 5000})).json()
    fields = [*FIND_COURSES.mapping.values(), "source_version"]
    return {c["uuid"]: {name: c[name] for name in fields} for c in body["copies"]}


async def run_courses(line: LineUnderTest) -> httpx.Response:
    return await line["find"].post("/admin/edges/publish/course/run", headers=ADMIN)


async def test_faults_are_set_listed_and_cleared(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        find = line["find"]
        assert await faults(find) == []
        until = "2026-10-05T06:00:00Z"
        set_ = await set_fault(find, kind="drop_pages", edge=FIND_COURSES.name, until=until)
        assert set_ == {
            "id": 1,
            "kind": "drop_pages",
            "until": until,
            "status": 503,
            "seconds": 1.0,
            "edge": FIND_COURSES.name,
            "times": None,
            "path": None,
            "write": None,
            "reader": None,
            "fired": 0,
            "active": True,
        }
        await set_fault(find, kind="slow", seconds=0, times=3)
        assert [f["id"] for f in await faults(find)] == [1, 2]

        await line.control.advance(by="6h")  # `until` is on the simulated clock
        assert [f["active"] for f in await faults(find)] == [False, True]

        assert (await find.delete("/admin/faults", headers=ADMIN)).status_code == 204
        assert await faults(find) == []


@pytest.mark.parametrize(
    ("service", "spec", "field"),
    [
        ("find", {"kind": "explode"}, "kind"),
        ("find", {"kind": "fail", "colour": "red"}, "colour"),
        ("find", {"kind": "fail", "status": 200}, "status"),
        ("find", {"kind": "slow", "seconds": -1}, "seconds"),
        ("find", {"kind": "drop_pages", "times": 0}, "times"),
        ("find", {"kind": "drop_pages", "until": "soon"}, "until"),
        ("find", {"kind": "drop_pages", "edge": "publish.course.apply"}, "edge"),
        ("find", {"kind": "fail", "edge": FIND_COURSES.name}, "edge"),
        ("gias", {"kind": "die_mid_batch"}, "kind"),
        ("publish", {"kind": "edit_mid_read", "path": "/records/course"}, "write"),
        ("publish", {"kind": "fail", "path": "/records/course"}, "path"),
    ],
)
async def test_a_bad_fault_is_refused_naming_the_field(
    state_dir: Path, service: str, spec: dict[str, Any], field: str
) -> None:
    async with in_process_line([service], state_dir) as line:
        refused = await line[service].post("/admin/faults", json=spec, headers=ADMIN)
        assert refused.status_code == 422
        assert names_field(refused, field), refused.text
        assert await faults(line[service]) == []


async def test_faults_need_the_admin_token(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        assert (await gias.post("/admin/faults", json={"kind": "fail"})).status_code == 401
        assert (await gias.get("/admin/faults", headers=API)).status_code == 403
        assert (await gias.delete("/admin/faults", headers=API)).status_code == 403


async def test_a_failing_owner_answers_its_status_but_health_and_admin(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish = line["publish"]
        await publish_courses(line, CODES[:2])
        await set_fault(publish, kind="fail", status=500, times=2)

        assert (await publish.get("/health")).status_code == 200
        assert (await publish.get("/admin/clock", headers=ADMIN)).status_code == 200
        failed = await publish.get("/records/course")
        assert failed.status_code == 500
        assert "publish is failing on purpose" in failed.json()["detail"]

        # the consumer's run fails on the second answer; the next one copies everything
        refused = await run_courses(line)
        assert refused.status_code == 502
        assert "publish answered 500" in refused.json()["detail"]
        assert (await run_courses(line)).json()["result"]["upserted"] == 2
        assert [f["fired"] for f in await faults(publish)] == [2]
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)


async def test_an_edit_mid_read_lands_before_the_answer_leaves_and_only_for_its_reader(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await builders.publish_provider(line, builders.provider())
        path = "/api/public/v1/recruitment_cycles/2027/providers"
        write = {"method": "PATCH", "path": "/providers/2FR", "body": {"name": "UCL"}}
        await set_fault(publish, kind="edit_mid_read", path=path, reader="apply", write=write)

        assert (await publish.get(path)).json()["data"][0]["attributes"]["name"] != "UCL"
        assert [f["fired"] for f in await faults(publish)] == [0]  # not Apply's read
        apply = {"Authorization": "Bearer apply-publish-token"}
        read = (await publish.get(path, headers=apply)).json()
        # the page was answered before the edit, and left after it
        assert read["data"][0]["attributes"]["name"] == "UCL Institute of Education"
        assert (await publish.get(path)).json()["data"][0]["attributes"]["name"] == "UCL"
        assert [f["fired"] for f in await faults(publish)] == [1]


async def test_a_failing_owner_recovers_when_the_fault_runs_out_on_the_clock(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish = line["publish"]
        await publish_courses(line, CODES[:2])
        # `until` is read on Publish's clock, which reaches 00:30 only after Find's 00:30 run
        await set_fault(publish, kind="fail", until="2026-10-05T00:32:00Z")

        ran = await line.control.advance(by="30m")
        copying = [job for job in ran if job["job"] == FIND_COURSES.name]
        # six scheduled runs, and the retries in between them, all failed
        assert len(copying) > 6
        assert not any(job["ok"] for job in copying)
        assert await find_copies(line) == {}

        ran = await line.control.advance(by="5m")
        *failed, worked = [job["ok"] for job in ran if job["job"] == FIND_COURSES.name]
        assert (failed, worked) == ([False] * len(failed), True)
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)


async def test_a_slow_owner_answers_after_its_wait(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await set_fault(publish, kind="slow", seconds=0, times=1)
        assert (await publish.get("/records/course")).status_code == 200
        assert (await publish.get("/records/course")).status_code == 200
        [slow] = await faults(publish)
        assert (slow["fired"], slow["active"]) == (1, False)


PAGE_FAULTS = [
    {"kind": "duplicate_pages"},
    {"kind": "reorder_pages"},
    {"kind": "delay_pages", "seconds": 0},
    {"kind": "reorder_pages", "times": 1},
]


@pytest.mark.parametrize("mechanism", ["feed", "updated_since", "snapshot"])
@pytest.mark.parametrize("spec", PAGE_FAULTS, ids=lambda spec: str(spec["kind"]))
async def test_pages_duplicated_reordered_or_delayed_still_converge(
    state_dir: Path, mechanism: str, spec: dict[str, Any]
) -> None:
    overrides = {FIND_COURSES.name: mechanism}
    async with in_process_line(
        ["publish", "find"], state_dir, page_size=2, edge_overrides=overrides
    ) as line:
        publish = line["publish"]
        uuids = await publish_courses(line, CODES)
        await set_fault(line["find"], edge=FIND_COURSES.name, **spec)
        first = (await run_courses(line)).json()["result"]
        assert first["upserted"] == len(CODES)
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)

        await line.control.advance(by="1m")  # after the last run, as updated_since tells
        for uuid, name in zip(uuids, ["Art", "Biology", "Chemistry"], strict=False):
            await publish.patch(f"/courses/{uuid}", json={"name": name}, headers=API)
        again = (await run_courses(line)).json()["result"]
        assert again["upserted"] == 3
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)
        assert all(fault["fired"] > 0 for fault in await faults(line["find"]))


async def test_a_page_overtaken_by_a_later_delete_cannot_bring_the_record_back(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir, page_size=2) as line:
        publish = line["publish"]
        art, biology = await publish_courses(line, CODES[:2])  # the first page: both created
        assert (await publish.delete(f"/courses/{art}", headers=API)).status_code == 204
        await publish.post("/providers/2FR/courses", json=builders.course("CCCC"), headers=API)
        # the second page (art deleted, CCCC created) arrives before the first
        await set_fault(line["find"], kind="reorder_pages", times=1)

        stats = (await run_courses(line)).json()["result"]
        assert (stats["pages"], stats["fetched"]) == (2, 4)
        assert (await line["find"].get(f"/copies/course/{art}")).status_code == 404
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)
        [edge] = [
            e
            for e in (await line["find"].get("/admin/edges", headers=ADMIN)).json()
            if e["edge"] == FIND_COURSES.name
        ]
        head = (await publish.get("/feed/course", params={"since": 0})).json()["next"]
        assert edge["position"] == str(head)
        assert biology in await find_copies(line)


async def test_a_duplicated_feed_page_is_applied_once(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir, page_size=2) as line:
        publish = line["publish"]
        await publish_courses(line, CODES)
        await set_fault(line["find"], kind="duplicate_pages", edge=FIND_COURSES.name)
        stats = (await run_courses(line)).json()["result"]
        # three pages, each delivered twice: the second delivery of each changes nothing
        assert (stats["pages"], stats["fetched"]) == (6, 10)
        assert (stats["upserted"], stats["unchanged"]) == (5, 5)
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)


@pytest.mark.parametrize("mechanism", ["feed", "updated_since", "snapshot"])
async def test_a_dropped_page_is_read_again_by_the_next_run(
    state_dir: Path, mechanism: str
) -> None:
    overrides = {FIND_COURSES.name: mechanism}
    async with in_process_line(
        ["publish", "find"], state_dir, page_size=2, edge_overrides=overrides
    ) as line:
        publish = line["publish"]
        await publish_courses(line, CODES)
        await set_fault(line["find"], kind="drop_pages", times=1)

        lost = await run_courses(line)
        assert lost.status_code == 502
        assert "page 1 was lost on the way" in lost.json()["detail"]
        assert await find_copies(line) == {}

        again = (await run_courses(line)).json()["result"]
        assert again["upserted"] == len(CODES)
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)


class Killed(BaseException):
    """The process ending where it stands, as SIGKILL would end it."""


def die() -> NoReturn:
    raise Killed


def killed_mid_batch() -> Faults:
    """A die_mid_batch fault on Find's courses, dying as a test can survive."""
    faults = Faults(SimulatedClock(ClockMode.MANUAL, CLOCK_START), die=die)
    faults.add(FaultSpec(kind=FaultKind.DIE_MID_BATCH, edge=FIND_COURSES.name))
    return faults


async def test_a_copier_killed_mid_batch_leaves_nothing_half_applied(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await publish_courses(line, CODES)

        async def relay(request: httpx.Request) -> httpx.Response:
            return await forward(publish, request)

        async with consumer(
            "find", FIND_TARGETS, "publish", relay, state_dir, faults=killed_mid_batch()
        ) as dying:
            with pytest.raises(Killed):
                await dying.run(FIND_COURSES.name)
            assert dying.faults is not None
            assert [f.fired for f in dying.faults.listed()] == [1]
            # the page's upserts were written when it died: none of them, nor the cursor, stayed
            assert copies(dying, FIND_COURSES) == {}
            assert cursor(dying, FIND_COURSES) is None

        async with consumer("find", FIND_TARGETS, "publish", relay, state_dir) as restarted:
            stats = await restarted.run(FIND_COURSES.name)
            assert (stats.fetched, stats.upserted, stats.unchanged) == (5, 5, 0)
            assert copy_view(restarted, FIND_COURSES) == await owner_view(publish, FIND_COURSES)


async def edge_view(line: LineUnderTest, service: str, edge: str) -> dict[str, Any]:
    views = (await line[service].get("/admin/edges", headers=ADMIN)).json()
    view: dict[str, Any] = next(v for v in views if v["edge"] == edge)
    return view


async def test_a_consumer_whose_cursor_was_pruned_relists_on_its_own_and_says_so(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish = line["publish"]
        kept, dropped = await publish_courses(line, CODES[:2])
        await line.control.advance(by="5m")
        assert (await edge_view(line, "find", FIND_COURSES.name))["relists"] == 0

        assert (await publish.delete(f"/courses/{dropped}", headers=API)).status_code == 204
        await publish.patch(f"/courses/{kept}", json={"name": "Art"}, headers=API)
        pruned = await publish.post("/admin/feed/prune", json={"keep": 0}, headers=ADMIN)
        assert pruned.status_code == 200
        assert (await publish.get("/feed/course", params={"since": 1})).status_code == 410

        ran = await line.control.advance(by="5m")
        [copied] = [job for job in ran if job["job"] == FIND_COURSES.name]
        assert (copied["ok"], copied["result"]["relisted"]) == (True, True)
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)
        view = await edge_view(line, "find", FIND_COURSES.name)
        assert (view["relists"], view["last_full_sync_at"]) == (1, "2026-10-05T00:10:00Z")

        # from the owner's head it follows the feed again, and counts no more relists
        await publish.patch(f"/courses/{kept}", json={"name": "Art II"}, headers=API)
        ran = await line.control.advance(by="5m")
        [copied] = [job for job in ran if job["job"] == FIND_COURSES.name]
        assert (copied["result"]["relisted"], copied["result"]["upserted"]) == (False, 1)
        assert (await edge_view(line, "find", FIND_COURSES.name))["relists"] == 1
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)


async def test_a_fault_set_on_one_edge_leaves_the_others(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await publish_courses(line, CODES[:1])
        await set_fault(line["find"], kind="drop_pages", edge="publish.provider.find")
        assert (await run_courses(line)).status_code == 200
        providers = await line["find"].post("/admin/edges/publish/provider/run", headers=ADMIN)
        assert providers.status_code == 502
        [fault] = await faults(line["find"])
        assert fault["fired"] == 1


@pytest.mark.parametrize(
    ("kind", "cause"),
    [
        ("disk_full", "database or disk is full"),
        ("read_only", "attempt to write a readonly database"),
    ],
)
async def test_a_consumer_whose_database_refuses_writes_fails_its_sync_and_says_why(
    state_dir: Path, kind: str, cause: str
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish, find = line["publish"], line["find"]
        # enough courses that their copies need pages the database does not have yet
        await publish_courses(line, [f"C{number:03d}" for number in range(60)])
        await set_fault(find, kind=kind)

        refused = await run_courses(line)
        assert refused.status_code == 502
        assert cause in refused.json()["detail"]
        assert await find_copies(line) == {}
        assert (await edge_view(line, "find", FIND_COURSES.name))["position"] is None
        jobs = (await find.get("/admin/jobs", headers=ADMIN)).json()
        [job] = [job for job in jobs if job["name"] == FIND_COURSES.name]
        assert cause in job["last_error"]
        # the clock moves on, though the database cannot record it or the runs
        ran = await line.control.advance(by="5m")
        assert [run["ok"] for run in ran if run["job"] == FIND_COURSES.name] == [False]

        assert (await find.delete("/admin/faults", headers=ADMIN)).status_code == 204
        healed = (await run_courses(line)).json()["result"]
        assert healed["upserted"] == 60
        assert await find_copies(line) == await owner_view(publish, FIND_COURSES)
        jobs = (await find.get("/admin/jobs", headers=ADMIN)).json()
        [job] = [job for job in jobs if job["name"] == FIND_COURSES.name]
        assert job["last_error"] is None
        assert job["last_run_at"] == "2026-10-05T00:05:00Z"


async def test_every_fault_is_logged_once_over_cleared_or_gone_with_its_process(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await line.control.advance(by="10m")
        await set_fault(publish, kind="fail", until="2026-10-05T06:00:00Z")
        await set_fault(publish, kind="disk_full")
        await line.control.advance(by="20m")
        assert (await publish.delete("/admin/faults", headers=ADMIN)).status_code == 204
        await set_fault(publish, kind="slow", seconds=0)
        await line.control.advance(by="30m")
    # the same service started again: the fault it held is gone, and its window closed then
    async with in_process_line(["publish"], state_dir) as line:
        windows = (await line["publish"].get("/admin/faults/windows", headers=ADMIN)).json()
        assert await faults(line["publish"]) == []
    assert [(w["kind"], w["began_at"][11:16], w["until"][11:16]) for w in windows] == [
        ("fail", "00:10", "00:30"),  # cleared before its own end
        ("disk_full", "00:10", "00:30"),  # logged though it refuses the database's writes
        ("slow", "00:30", "01:00"),  # gone with its process
    ]
