"""Find reading through: no copy of Publish's courses, so always current, and down with Publish."""

from pathlib import Path
from typing import Any

import pytest

from serviceline.testing import ADMIN, API, LineUnderTest, in_process_line
from tests import builders
from tests.consumer.test_copier import FIND_COURSES

pytestmark = pytest.mark.anyio

FIND_PROVIDERS = "publish.provider.find"
SEARCHES: list[dict[str, Any]] = [
    {},
    {"subject": "W1"},
    {"subject": "C1"},
    {"provider": "1TZ"},
    {"provider": "ucl"},
    {"location": "wc1h"},
    {"location": "south west"},
    {"study_mode": "part_time"},
    {"study_mode": "full_time", "subject": "W1"},
    {"per_page": 2, "page": 2},
]


async def publish_courses(line: LineUnderTest) -> dict[str, str]:
    """Two providers and courses of every kind a search tells apart; their UUIDs by code."""
    publish = line["publish"]
    await builders.publish_provider(line, builders.provider(), builders.site())
    await builders.publish_provider(
        line,
        builders.provider("1TZ", name="Exeter SCITT", postcode="EX4 4QJ", region_code="south_west"),
        builders.site(),
    )
    courses = {
        "2FR": [
            builders.course("AAAA", name="Art"),
            builders.course("BBBB", name="Biology", subject_codes=["C1"], study_mode="part_time"),
            builders.course("CCCC", name="Chemistry", state="draft"),
            builders.course("DDDD", name="Drama", findable=False),
        ],
        "1TZ": [
            builders.course("EEEE", name="Art", study_mode="full_time"),
            builders.course("FFFF", name="Biology", subject_codes=["C1", "W1"]),
        ],
    }
    uuids = {}
    for provider, bodies in courses.items():
        path = f"/providers/{provider}/courses/batch"
        created = await publish.post(path, json=bodies, headers=API)
        assert created.status_code == 201, created.text
        uuids.update({course["code"]: course["uuid"] for course in created.json()})
    await line.control.run_edge(FIND_PROVIDERS)
    return uuids


async def search(line: LineUnderTest, **params: Any) -> dict[str, Any]:
    found = await line["find"].get("/courses", params=params)
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.json()
    return body


async def test_reading_through_finds_what_an_up_to_date_copy_finds(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await publish_courses(line)
        await line.control.run_edge(FIND_COURSES)
        copied = [await search(line, **params) for params in SEARCHES]
        assert [result["total"] for result in copied] == [4, 3, 2, 2, 2, 2, 2, 3, 3, 4]

    async with in_process_line(["publish", "find"], state_dir, read_through=True) as line:
        assert [await search(line, **params) for params in SEARCHES] == copied


async def test_reading_through_keeps_no_copy_and_shows_each_change_at_once(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir, read_through=True) as line:
        find = line["find"]
        uuids = await publish_courses(line)
        edges = [view["edge"] for view in (await find.get("/admin/edges", headers=ADMIN)).json()]
        assert edges == [FIND_PROVIDERS]
        assert (await find.get("/copies/course")).status_code == 404
        jobs = [job["name"] for job in (await find.get("/admin/jobs", headers=ADMIN)).json()]
        assert FIND_COURSES.name not in jobs

        # no sync between Publish's change and what Find shows
        assert (await search(line, provider="1TZ"))["total"] == 2
        renamed = {"name": "Art history"}
        edited = await line["publish"].patch(f"/courses/{uuids['EEEE']}", json=renamed, headers=API)
        assert edited.is_success
        names = [c["name"] for c in (await search(line, provider="1TZ"))["courses"]]
        assert names == ["Art history", "Biology"]


async def test_while_publish_is_down_find_reading_through_answers_503_naming_it(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir, read_through=True) as line:
        await publish_courses(line)
        down = {"kind": "fail", "status": 503}
        assert (await line["publish"].post("/admin/faults", json=down, headers=ADMIN)).is_success

        refused = await line["find"].get("/courses")
        assert refused.status_code == 503
        assert refused.json()["detail"].startswith("Find reads courses live from Publish")
        assert "publish answered 503" in refused.json()["detail"]

        assert (await line["publish"].delete("/admin/faults", headers=ADMIN)).status_code == 204
        assert (await search(line))["total"] == 4


async def test_a_copying_find_keeps_answering_while_publish_is_down(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await publish_courses(line)
        await line.control.run_edge(FIND_COURSES)
        down = {"kind": "fail", "status": 503}
        assert (await line["publish"].post("/admin/faults", json=down, headers=ADMIN)).is_success
        assert (await search(line))["total"] == 4
