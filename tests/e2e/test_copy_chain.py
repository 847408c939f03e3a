"""The first copy chain over real processes and real HTTP, on the simulated clock."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from serviceline.testing import API, LineUnderTest, process_line
from tests import builders

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[LineUnderTest]:
    async with process_line(["gias", "publish", "find"], tmp_path) as running:
        yield running


async def copy_of(line: LineUnderTest, service: str, entity: str, key: str) -> dict[str, object]:
    response = await line[service].get(f"/copies/{entity}/{key}")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_school_closed_in_gias_reaches_publish_after_the_next_daily_snapshot(
    line: LineUnderTest,
) -> None:
    assert (await line["gias"].post("/schools", json=builders.school(), headers=API)).is_success
    await line.control.advance(by="1d3h")  # next day: 00:00 GIAS extract, 02:30 Publish import
    assert (await copy_of(line, "publish", "school", "100000"))["status_code"] == "1"

    await line.control.advance(by="7h")  # 10:00
    closed = {"status_code": "2", "close_date": "2026-10-05"}
    assert (await line["gias"].patch("/schools/100000", json=closed, headers=API)).is_success
    await line.control.advance(by="16h")  # 02:00 next day: extract made, not yet imported
    assert (await copy_of(line, "publish", "school", "100000"))["status_code"] == "1"
    await line.control.advance(by="30m")  # 02:30: the daily import runs
    assert (await copy_of(line, "publish", "school", "100000"))["status_code"] == "2"


async def test_course_renamed_in_publish_is_stale_in_find_until_its_sync(
    line: LineUnderTest,
) -> None:
    publish = line["publish"]
    assert (await publish.post("/providers", json=builders.provider(), headers=API)).is_success
    assert (
        await publish.post("/providers/2FR/sites", json=builders.site(), headers=API)
    ).is_success
    created = await publish.post("/providers/2FR/courses", json=builders.course(), headers=API)
    uuid = created.json()["uuid"]
    await line.control.advance(by="5m")
    assert (await copy_of(line, "find", "course", uuid))["name"] == "Art and Design"

    renamed = await publish.patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
    assert renamed.is_success
    await line.control.advance(by="4m")
    assert (await copy_of(line, "find", "course", uuid))["name"] == "Art and Design"
    await line.control.advance(by="1m")
    assert (await copy_of(line, "find", "course", uuid))["name"] == "Art"
    found = (await line["find"].get("/courses", params={"subject": "W1"})).json()
    assert [course["name"] for course in found["courses"]] == ["Art"]


async def test_a_copy_cannot_be_changed_through_the_consumer(line: LineUnderTest) -> None:
    assert (await line["gias"].post("/schools", json=builders.school(), headers=API)).is_success
    await line.control.advance(by="1d3h")
    refused = await line["publish"].patch("/copies/school/100000", json={"name": "Renamed"})
    assert refused.status_code == 403
    assert "owned by gias" in refused.json()["detail"]
    assert (await copy_of(line, "publish", "school", "100000"))["name"] == "The Aldgate School"
