"""Edges read another way than the real line reads them: what may change, and what it does."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.model.topology import KERNEL_READER, Mechanism
from serviceline.stack.launcher import LaunchError, LineConfig, line_topology, service_env
from serviceline.testing import (
    ADMIN,
    API,
    AUDITOR,
    LineUnderTest,
    in_process_line,
    service_app,
    service_settings,
)
from tests.consumer.test_copier import FIND_COURSES, owner_view, publish_courses

pytestmark = pytest.mark.anyio

APPLY_COURSES = LINE.edge("publish.course.apply")
GIAS_SCHOOLS = LINE.edge("gias.school.publish")
TRNS = LINE.edge("dqt.teacher.register")
REGISTER_SUBJECTS = LINE.edge("publish.subject.register")


@pytest.mark.parametrize(
    ("every", "cron"),
    [
        ("1m", "* * * * *"),
        ("10m", "*/10 * * * *"),
        ("1h", "0 * * * *"),
        ("6h", "0 */6 * * *"),
        ("1d", "0 0 * * *"),
        ("1w", "0 0 * * 0"),
        ("30 3 * * 1", "30 3 * * 1"),
    ],
)
def test_a_schedule_is_cron_or_a_duration_that_divides_time_evenly(every: str, cron: str) -> None:
    line = LINE.with_overrides({FIND_COURSES.name: f"updated_since@{every}"})
    edge = line.edge(FIND_COURSES.name)
    assert (edge.mechanism, edge.schedule) == (Mechanism.UPDATED_SINCE, cron)
    # everything else about the edge, and every other edge, stays as it was
    assert edge.mapping == FIND_COURSES.mapping
    assert [e for e in line.edges if e.name != edge.name] == [
        e for e in LINE.edges if e.name != edge.name
    ]


def test_a_mechanism_alone_keeps_the_edges_schedule() -> None:
    edge = LINE.with_overrides({APPLY_COURSES.name: "snapshot"}).edge(APPLY_COURSES.name)
    assert (edge.mechanism, edge.schedule) == (Mechanism.SNAPSHOT, APPLY_COURSES.schedule)
    assert LINE.with_overrides({}) == LINE


def test_every_edge_that_can_be_read_so_follows_a_star() -> None:
    line = LINE.with_overrides({"*": "updated_since@1h", FIND_COURSES.name: "snapshot"})
    assert line.edge(FIND_COURSES.name).mechanism is Mechanism.SNAPSHOT
    assert line.edge("publish.provider.find").mechanism is Mechanism.UPDATED_SINCE
    assert line.edge(APPLY_COURSES.name).schedule == "0 * * * *"
    # a file can only be read whole, and Register's own events drive its TRN copies
    assert line.edge(GIAS_SCHOOLS.name) == GIAS_SCHOOLS
    assert line.edge(TRNS.name) == TRNS


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"publish.course.nowhere": "feed"}, "publish.course.nowhere: no such edge"),
        ({FIND_COURSES.name: "push"}, f"{FIND_COURSES.name}: mechanism 'push'"),
        ({FIND_COURSES.name: "feed@"}, f"{FIND_COURSES.name}: give a schedule"),
        ({FIND_COURSES.name: "feed@45m"}, "every 45m does not divide an hour"),
        ({FIND_COURSES.name: "feed@90s"}, "every 90s does not divide"),
        ({FIND_COURSES.name: "feed@soon"}, f"{FIND_COURSES.name}: schedule: duration 'soon'"),
        ({FIND_COURSES.name: "feed@61 * * * *"}, "'61 * * * *' is not a valid cron"),
        # Register reads Publish's fixed list of subjects, which no change feed logs
        ({REGISTER_SUBJECTS.name: "feed"}, f"{REGISTER_SUBJECTS.name}: cannot be read by feed"),
        ({GIAS_SCHOOLS.name: "updated_since"}, "can only be read by snapshot"),
        ({TRNS.name: "snapshot@1d"}, f"{TRNS.name} is driven by register's own events"),
        ({FIND_COURSES.name: "event"}, "only find's own events could drive it"),
        ({"*": "event"}, "*: no edge can be read by event"),
    ],
)
def test_an_impossible_override_is_refused_naming_the_edge(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as refused:
        LINE.with_overrides(overrides)
    [edge] = overrides
    assert str(refused.value).startswith(edge)


async def edges(line: LineUnderTest, service: str) -> dict[str, dict[str, Any]]:
    views = (await line[service].get("/admin/edges", headers=ADMIN)).json()
    return {view["edge"]: view for view in views}


async def test_a_service_runs_its_edges_as_its_settings_override_them(state_dir: Path) -> None:
    overrides = {FIND_COURSES.name: "updated_since@1h"}
    async with in_process_line(["publish", "find"], state_dir, edge_overrides=overrides) as line:
        publish = line["publish"]
        art, biology = await publish_courses(line, ["AAAA", "BBBB"])
        view = (await edges(line, "find"))[FIND_COURSES.name]
        assert (view["mechanism"], view["schedule"]) == ("updated_since", "0 * * * *")

        ran = await line.control.advance(by="1h")
        assert [job["due_at"] for job in ran if job["job"] == FIND_COURSES.name] == [
            "2026-10-05T01:00:00+00:00"
        ]
        assert (await line["find"].get(f"/copies/course/{art}")).status_code == 200

        # a hard delete never shows in `updated_since`: the copy outlives its course
        await line.control.advance(by="1m")  # a change at the run's own instant would be missed
        assert (await publish.delete(f"/courses/{art}", headers=API)).status_code == 204
        await publish.patch(f"/courses/{biology}", json={"name": "Biology"}, headers=API)
        await line.control.advance(by="1h")
        assert (await line.copy_of("find", "course", biology))["name"] == "Biology"
        assert (await line["find"].get(f"/copies/course/{art}")).status_code == 200


async def test_an_edge_read_another_way_after_a_restart_starts_from_a_full_listing(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        art, _ = await publish_courses(line, ["AAAA", "BBBB"])
        await line.control.run_edge(FIND_COURSES)
        assert (await edges(line, "find"))[FIND_COURSES.name]["position"].isdigit()
        assert (await line["publish"].delete(f"/courses/{art}", headers=API)).is_success

    overrides = {FIND_COURSES.name: "updated_since"}
    async with in_process_line(["publish", "find"], state_dir, edge_overrides=overrides) as line:
        stats = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (stats["mechanism"], stats["deleted"]) == ("updated_since", 1)
        copies = (await line["find"].get("/copies/course")).json()["copies"]
        owned = await owner_view(line["publish"], FIND_COURSES)
        assert sorted(c["uuid"] for c in copies) == sorted(owned)

    async with in_process_line(["publish", "find"], state_dir) as line:
        stats = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (stats["mechanism"], stats["fetched"]) == ("feed", 1)


def test_a_service_refuses_to_start_with_an_impossible_override(state_dir: Path) -> None:
    overrides = {REGISTER_SUBJECTS.name: "feed@10m"}
    settings = service_settings("register", state_dir, edge_overrides=overrides)
    with pytest.raises(ValueError, match=f"^{REGISTER_SUBJECTS.name}: cannot be read by feed"):
        service_app("register", settings)


def test_the_launcher_passes_overrides_and_settings_to_each_service(tmp_path: Path) -> None:
    config = LineConfig(
        tmp_path,
        edge_overrides={FIND_COURSES.name: "snapshot@1d"},
        service_settings={"find": {"read_through": "true", "page_size": "50"}},
    )
    find = service_env(config, LINE.service("find"), LINE, None)
    assert json.loads(find["FIND_EDGE_OVERRIDES"]) == {FIND_COURSES.name: "snapshot@1d"}
    assert (find["FIND_READ_THROUGH"], find["FIND_PAGE_SIZE"]) == ("true", "50")
    publish = service_env(config, LINE.service("publish"), LINE, None)
    assert "PUBLISH_READ_THROUGH" not in publish
    assert json.loads(publish["PUBLISH_EDGE_OVERRIDES"]) == {FIND_COURSES.name: "snapshot@1d"}

    # what drives the line sees it as the services run it
    line = line_topology(config, LINE)
    assert line.edge("publish.provider.find").mechanism is Mechanism.FEED
    with pytest.raises(KeyError):
        line.edge(FIND_COURSES.name)


def test_a_setting_the_environment_gives_as_json_is_read_as_json(tmp_path: Path) -> None:
    tokens = {"find": {"upstream_tokens": '{"publish": "secret"}', "read_through": "1"}}
    line = line_topology(LineConfig(tmp_path, service_settings=tokens), LINE)
    assert [edge.name for edge in line.edges_into("find")] == ["publish.provider.find"]
    find = service_env(LineConfig(tmp_path, service_settings=tokens), LINE.service("find"), LINE, 0)
    assert find["FIND_UPSTREAM_TOKENS"] == '{"publish": "secret"}'


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"edge_overrides": {REGISTER_SUBJECTS.name: "feed"}}, "edge_overrides: publish.subject."),
        ({"service_settings": {"nowhere": {}}}, "service_settings: no service named 'nowhere'"),
        ({"service_settings": {"find": {"read_thru": "1"}}}, "service_settings.find.read_thru:"),
        (
            {"service_settings": {"find": {"read_through": "maybe"}}},
            "service_settings.find.read_through:",
        ),
    ],
)
def test_the_launcher_refuses_bad_overrides_before_starting_anything(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    config = LineConfig(tmp_path, **changes)
    with pytest.raises(LaunchError, match=f"^{message}"):
        line_topology(config, LINE)


async def test_apply_read_from_publishs_change_feed_hears_of_a_hard_delete(
    state_dir: Path,
) -> None:
    """What if Publish kept a change feed beside its API v1: Apply reads the same records."""
    overrides = {APPLY_COURSES.name: "feed@10m"}
    assert LINE.with_overrides(overrides).edge(APPLY_COURSES.name).reader is KERNEL_READER
    async with in_process_line(["publish", "apply"], state_dir, edge_overrides=overrides) as line:
        art, biology = await publish_courses(line, ["AAAA", "BBBB"])
        first = (await line.control.run_edge(APPLY_COURSES))["result"]
        assert (first["mechanism"], first["upserted"]) == ("feed", 2)
        assert (await line["publish"].delete(f"/courses/{art}", headers=API)).status_code == 204
        await line["publish"].patch(f"/courses/{biology}", json={"name": "Biology"}, headers=API)
        then = (await line.control.run_edge(APPLY_COURSES))["result"]
        assert (then["fetched"], then["upserted"], then["deleted"]) == (2, 1, 1)
        assert (await line.copy_of("apply", "course", biology))["name"] == "Biology"
        assert (
            await line["apply"].get(f"/copies/course/{art}", headers=AUDITOR)
        ).status_code == 404
