"""A consumer following its owner's change feed (`feed@follow`): what may follow, and how."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.model.topology import KERNEL_READER, Mechanism
from serviceline.stack.launcher import LaunchError, LineConfig, line_topology
from serviceline.studies.spec import StudyError, arms, parse
from serviceline.testing import ADMIN, API, LineUnderTest, in_process_line
from tests.consumer.test_copier import FIND_COURSES, publish_courses

pytestmark = pytest.mark.anyio

START = datetime(2026, 10, 5, tzinfo=UTC)
APPLY_COURSES = LINE.edge("publish.course.apply")
FOLLOWED = {"publish.course.find": "feed@follow", "publish.provider.find": "feed@follow"}


def test_a_followed_feed_has_no_schedule_and_keeps_everything_else() -> None:
    edge = LINE.with_overrides({FIND_COURSES.name: "feed@follow"}).edge(FIND_COURSES.name)
    assert (edge.mechanism, edge.schedule, edge.follow) == (Mechanism.FEED, None, True)
    assert edge.cadence == "follows the feed"
    assert edge.mapping == FIND_COURSES.mapping
    assert FIND_COURSES.follow is False
    # a mechanism alone keeps it followed; a schedule puts it back on a cron
    again = LINE.with_overrides({FIND_COURSES.name: "feed@follow"})
    assert again.with_overrides({FIND_COURSES.name: "feed"}).edge(FIND_COURSES.name).follow
    scheduled = again.with_overrides({FIND_COURSES.name: "feed@10m"}).edge(FIND_COURSES.name)
    assert (scheduled.schedule, scheduled.follow) == ("*/10 * * * *", False)


def test_an_edge_read_through_an_api_without_a_feed_follows_the_owners_feed_instead() -> None:
    edge = LINE.with_overrides({APPLY_COURSES.name: "feed@follow"}).edge(APPLY_COURSES.name)
    assert (edge.reader, edge.walk, edge.follow) == (KERNEL_READER, None, True)
    # its weekly full sync still runs on its own cron
    assert edge.full_sync_schedule == APPLY_COURSES.full_sync_schedule


def test_every_edge_whose_owner_serves_a_feed_follows_a_star() -> None:
    line = LINE.with_overrides({"*": "feed@follow"})
    followed = {edge.name for edge in line.edges if edge.follow}
    assert FIND_COURSES.name in followed
    assert APPLY_COURSES.name in followed
    for edge in line.edges:
        if edge.name not in followed:
            assert edge == LINE.edge(edge.name)
    assert "gias.school.publish" not in followed
    assert "publish.subject.register" not in followed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"gias.school.publish": "feed@follow"},
            "gias.school.publish: feed@follow: gias serves it no change feed to follow",
        ),
        (
            {"publish.subject.register": "feed@follow"},
            "publish.subject.register: feed@follow: publish serves it no change feed",
        ),
        (
            {"dqt.teacher.register": "feed@follow"},
            "dqt.teacher.register: feed@follow: dqt serves it no change feed",
        ),
        (
            {FIND_COURSES.name: "updated_since@follow"},
            f"{FIND_COURSES.name}: updated_since@follow: only a change feed can be followed",
        ),
        (
            {FIND_COURSES.name: "snapshot@follow"},
            f"{FIND_COURSES.name}: snapshot@follow: only a change feed can be followed",
        ),
        ({"*": "snapshot@follow"}, "*: snapshot@follow: only a change feed can be followed"),
    ],
)
def test_following_what_is_no_feed_is_refused_naming_the_edge_and_mechanism(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        LINE.with_overrides(overrides)


def test_the_launcher_refuses_to_follow_what_is_no_feed(tmp_path: Path) -> None:
    config = LineConfig(tmp_path, edge_overrides={"gias.school.register": "feed@follow"})
    with pytest.raises(LaunchError, match=r"^edge_overrides: gias\.school\.register: feed@follow"):
        line_topology(config, LINE)


def test_a_study_may_follow_feeds_and_says_where_it_cannot() -> None:
    study = parse(
        {"title": "Following", "span": "1d", "overrides": {"publish.*.*": "feed@follow"}},
        "s",
        default_name="following",
    )
    [arm] = arms(study)
    assert arm.applied["publish.course.find"] == "feed@follow"
    assert "publish.course.find" in arm.changed
    assert "publish.subject.register" in arm.refused
    with pytest.raises(StudyError, match="only a change feed can be followed"):
        parse({"title": "T", "span": "1d", "overrides": {"*": "snapshot@follow"}}, "s", "t")


async def applied(line: LineUnderTest, service: str) -> list[dict[str, Any]]:
    page = await line[service].get("/admin/applied", headers=ADMIN, params={"limit": 1000})
    assert page.status_code == 200, page.text
    rows: list[dict[str, Any]] = page.json()["applied"]
    return rows


async def changed_at(line: LineUnderTest, key: str) -> list[str]:
    page = await line["publish"].get("/admin/changelog", headers=ADMIN, params={"limit": 1000})
    return [c["changed_at"] for c in page.json()["changes"] if c["key"] == key]


async def test_under_a_manual_clock_nothing_follows_until_the_clock_moves(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir, edge_overrides=FOLLOWED) as line:
        jobs = (await line["find"].get("/admin/jobs", headers=ADMIN)).json()
        [job] = [j for j in jobs if j["name"] == FIND_COURSES.name]
        assert (job["schedule"], job["due_at"]) == (None, None)  # no cron: nothing due
        [art] = await publish_courses(line, ["AAAA"])
        assert (await line["find"].get(f"/copies/course/{art}")).status_code == 404

        # the clock's next move looks at Publish first, at the moment of the write
        ran = await line.control.advance(by="1m")
        followed = [j for j in ran if j["job"] == FIND_COURSES.name]
        assert [j["due_at"] for j in followed] == [START.isoformat()]
        assert (await line.copy_of("find", "course", art))["name"] == "Art and Design"
        [row] = [r for r in await applied(line, "find") if r["key"] == art]
        assert row["applied_at"] == row["read_at"] == "2026-10-05T00:00:00Z"

        # a write at 00:01 reaches Find at 00:01 at the next move, however long that move
        renamed = await line["publish"].patch(f"/courses/{art}", json={"name": "Art"}, headers=API)
        assert renamed.is_success
        ran = await line.control.advance(by="1d")
        assert [j["due_at"] for j in ran if j["job"] == FIND_COURSES.name] == [
            (START + timedelta(minutes=1)).isoformat()
        ]
        assert (await line.copy_of("find", "course", art))["name"] == "Art"
        rows = [r for r in await applied(line, "find") if r["key"] == art]
        assert [r["applied_at"] for r in rows] == await changed_at(line, art)

        # Publish quiet and its log known not to have moved: no look at it at all
        line.control.remember_views = True
        await line.control.clocks()
        ran = await line.control.advance(by="1d")
        assert not [j for j in ran if j["job"] == FIND_COURSES.name]


async def test_a_change_made_ahead_of_the_consumers_clock_arrives_at_its_own_moment(
    state_dir: Path,
) -> None:
    """Publish moved on alone: Find takes each change when its clock reaches the change."""
    async with in_process_line(["publish", "find"], state_dir, edge_overrides=FOLLOWED) as line:
        art, biology = await publish_courses(line, ["AAAA", "BBBB"])
        await line.control.advance(by="1m")
        moments = [START + timedelta(hours=hours) for hours in (3, 5)]
        for moment, key, name in zip(moments, (art, biology), ("Art", "Biology"), strict=True):
            await line.control.advance(to=moment, only={"publish"})
            patched = await line["publish"].patch(
                f"/courses/{key}", json={"name": name}, headers=API
            )
            assert patched.is_success
            line.control.touched({"publish"})
        clocks = await line.control.clocks()
        assert clocks["find"]["now"] < moments[0].isoformat()  # left behind

        ran = await line.control.advance(to=START + timedelta(hours=6))
        followed = [j["due_at"] for j in ran if j["job"] == FIND_COURSES.name]
        # a look at Find's own moment (nothing made by then), then each change at its moment
        assert followed[1:] == [moment.isoformat() for moment in moments]
        for key in (art, biology):
            rows = [r for r in await applied(line, "find") if r["key"] == key]
            assert [r["applied_at"] for r in rows] == await changed_at(line, key)
