"""The first copy chain over real processes and real HTTP, on the simulated clock."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from serviceline.testing import API, AUDITOR, LineUnderTest, process_line
from tests import builders

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture
async def schools_line(tmp_path: Path) -> AsyncIterator[LineUnderTest]:
    async with process_line(["gias", "publish"], tmp_path) as running:
        yield running


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[LineUnderTest]:
    async with process_line(["publish", "find", "apply", "manage"], tmp_path) as running:
        yield running


async def publish_course(line: LineUnderTest) -> str:
    await builders.publish_provider(line, builders.provider(), builders.site())
    created = await line["publish"].post(
        "/providers/2FR/courses", json=builders.course(), headers=API
    )
    assert created.is_success, created.text
    uuid: str = created.json()["uuid"]
    return uuid


async def test_school_closed_in_gias_reaches_publish_after_the_next_daily_snapshot(
    schools_line: LineUnderTest,
) -> None:
    line = schools_line
    assert (await line["gias"].post("/schools", json=builders.school(), headers=API)).is_success
    await line.control.advance(by="1d3h")  # next day: 00:00 GIAS extract, 02:30 Publish import
    assert (await line.copy_of("publish", "school", "100000"))["status_code"] == "1"

    await line.control.advance(by="7h")  # 10:00
    closed = {"status_code": "2", "close_date": "2026-10-06"}
    assert (await line["gias"].patch("/schools/100000", json=closed, headers=API)).is_success
    await line.control.advance(by="16h")  # 02:00 next day: the extract is out, not yet imported
    assert (await line.copy_of("publish", "school", "100000"))["status_code"] == "1"
    await line.control.advance(by="30m")  # 02:30: the daily import runs
    assert (await line.copy_of("publish", "school", "100000"))["status_code"] == "2"

    refused = await line["publish"].patch("/copies/school/100000", json={"name": "Renamed"})
    assert refused.status_code == 403
    assert "owned by gias" in refused.json()["detail"]
    assert (await line.copy_of("publish", "school", "100000"))["name"] == "The Aldgate School"


async def test_course_renamed_in_publish_is_stale_in_apply_until_its_ten_minute_sync(
    line: LineUnderTest,
) -> None:
    uuid = await publish_course(line)
    await line.control.advance(by="10m")
    assert (await line.copy_of("apply", "course", uuid))["name"] == "Art and Design"

    await line.control.advance(by="1m")  # 00:11
    renamed = await line["publish"].patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
    assert renamed.is_success
    await line.control.advance(by="8m")  # 00:19: Apply has not synced since the rename
    assert (await line.copy_of("apply", "course", uuid))["name"] == "Art and Design"
    await line.control.advance(by="1m")  # 00:20: Apply's 10-minute sync
    copied = await line.copy_of("apply", "course", uuid)
    assert copied["name"] == "Art"
    assert copied["study_mode"] == "full_time_or_part_time"


async def test_course_renamed_in_publish_is_stale_in_find_until_its_sync(
    line: LineUnderTest,
) -> None:
    uuid = await publish_course(line)
    await line.control.advance(by="5m")
    assert (await line.copy_of("find", "course", uuid))["name"] == "Art and Design"

    renamed = await line["publish"].patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
    assert renamed.is_success
    await line.control.advance(by="4m")
    assert (await line.copy_of("find", "course", uuid))["name"] == "Art and Design"
    await line.control.advance(by="1m")
    assert (await line.copy_of("find", "course", uuid))["name"] == "Art"
    found = (await line["find"].get("/courses", params={"subject": "W1"})).json()
    assert [course["name"] for course in found["courses"]] == ["Art"]


async def test_a_manage_note_never_reaches_apply_but_a_decision_does(line: LineUnderTest) -> None:
    uuid = await publish_course(line)
    await line.control.advance(by="10m")
    candidate = await line["apply"].post("/candidates", json=builders.candidate(), headers=API)
    submitted = await line["apply"].post(
        "/applications",
        json=builders.application(candidate.json()["id"], uuid, study_mode="full_time"),
        headers=API,
    )
    assert submitted.is_success, submitted.text
    application = submitted.json()["id"]
    await line.control.advance(by="5m")
    manage = line["manage"]
    note = {"text": "Strong subject knowledge", "author": "Jane Smith"}
    noted = await manage.post(f"/applications/{application}/notes", json=note, headers=API)
    assert noted.is_success, noted.text
    offer = {"conditions": ["DBS check"], "user": builders.provider_user()}
    decided = await manage.post(f"/applications/{application}/offer", json=offer, headers=API)
    assert decided.is_success, decided.text

    in_apply = (await line["apply"].get(f"/applications/{application}", headers=API)).json()
    assert in_apply["status"] == "offer"  # the command reached the owner at once
    assert "Strong subject knowledge" not in str(in_apply)
    feed = (await line["apply"].get("/feed/application", headers=AUDITOR)).json()
    assert all("Strong subject knowledge" not in str(c["record"]) for c in feed["changes"])
    copied = await line.copy_of("manage", "application", application)
    assert copied["status"] == "awaiting_provider_decision"  # Manage learns at its next sync
    await line.control.advance(by="5m")
    assert (await line.copy_of("manage", "application", application))["status"] == "offer"
    viewed = (await manage.get(f"/applications/{application}", headers=API)).json()
    assert "Strong subject knowledge" in str(viewed)  # the note stays in Manage


async def test_a_copy_cannot_be_changed_through_the_consumer(line: LineUnderTest) -> None:
    uuid = await publish_course(line)
    await line.control.advance(by="10m")
    for method in ("PUT", "PATCH", "DELETE"):
        refused = await line["apply"].request(
            method, f"/copies/course/{uuid}", json={"name": "Renamed"}, headers=API
        )
        assert refused.status_code == 403
        assert "course is owned by publish" in refused.json()["detail"]
    assert (await line.copy_of("apply", "course", uuid))["name"] == "Art and Design"
