"""From a course in Publish to a teacher in DQT, every hop a copy or a command, over real HTTP."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from serviceline.testing import API, AUDITOR, LineUnderTest, process_line
from tests import builders

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

JOURNEY = ["gias", "publish", "apply", "manage", "register", "dqt", "hesa"]


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[LineUnderTest]:
    async with process_line(JOURNEY, tmp_path) as running:
        yield running


class Hops:
    """Moves the line's clock step by step until each hop shows, and records how long it took."""

    def __init__(self, line: LineUnderTest) -> None:
        self.line = line
        self.taken: list[tuple[str, timedelta]] = []

    async def until(
        self, hop: str, arrived: Callable[[], Awaitable[bool]], step: str, limit: timedelta
    ) -> timedelta:
        start = await self.line.control.now()
        while not await arrived():
            elapsed = await self.line.control.now() - start
            assert elapsed <= limit, f"{hop}: nothing after {elapsed} of simulated time"
            await self.line.control.advance(by=step)
        took = await self.line.control.now() - start
        self.taken.append((hop, took))
        print(f"{hop:<58} {took}")
        return took


async def test_from_a_published_course_to_a_teacher_with_qts(line: LineUnderTest) -> None:
    hops = Hops(line)
    publish, apply, manage = line["publish"], line["apply"], line["manage"]
    register, dqt = line["register"], line["dqt"]

    accredited = builders.provider("1TZ", name="Teach North SCITT", provider_type="scitt")
    assert (await publish.post("/providers", json=accredited, headers=API)).is_success
    lead = builders.provider(
        "2AB",
        name="Oakfield Teaching School Alliance",
        provider_type="lead_school",
        accredited_body=False,
    )
    await builders.publish_provider(line, lead, builders.site())
    course = builders.course(
        "G1X2",
        name="Mathematics",
        subject_codes=["G1"],
        accredited_provider_code="1TZ",
        program_type="school_direct_training_programme",
        qualifications=["qts", "pgce"],
    )
    created = await publish.post("/providers/2AB/courses", json=course, headers=API)
    assert created.is_success, created.text
    uuid = created.json()["uuid"]

    async def in_apply() -> bool:
        return (await apply.get(f"/copies/course/{uuid}")).status_code == 200

    await hops.until(
        "Publish -> Apply: course copied (updated_since)", in_apply, "1m", timedelta(minutes=10)
    )

    candidate = await apply.post("/candidates", json=builders.candidate(), headers=API)
    choice = builders.application(candidate.json()["id"], uuid, study_mode="full_time")
    submitted = await apply.post("/applications", json=choice, headers=API)
    assert submitted.is_success, submitted.text
    application = submitted.json()["id"]

    async def in_manage() -> bool:
        return (
            await manage.get(f"/copies/application/{application}", headers=AUDITOR)
        ).status_code == 200

    await hops.until(
        "Apply -> Manage: application copied (feed)", in_manage, "1m", timedelta(minutes=5)
    )

    offer = {"conditions": ["DBS check"], "user": builders.provider_user()}
    decided = await manage.post(f"/applications/{application}/offer", json=offer, headers=API)
    assert decided.is_success, decided.text
    accepted = await apply.post(f"/applications/{application}/accept-offer", headers=API)
    assert accepted.json()["status"] == "pending_conditions"
    met = {"user": builders.provider_user()}
    confirmed = await manage.post(
        f"/applications/{application}/confirm-conditions-met", json=met, headers=API
    )
    assert confirmed.is_success, confirmed.text
    recruited = (await apply.get(f"/applications/{application}", headers=API)).json()
    assert recruited["status"] == "recruited"  # commands reach the owner at once

    async def trainee_in_register() -> bool:
        found = await register.get("/trainees", params={"state": "draft"}, headers=API)
        return any(t["apply_id"] == application for t in found.json())

    await hops.until(
        "Apply -> Register: recruit imported 01:00, trainee 04:00",
        trainee_in_register,
        "15m",
        timedelta(days=1),
    )
    drafts = (await register.get("/trainees", params={"state": "draft"}, headers=API)).json()
    slug = next(t["slug"] for t in drafts if t["apply_id"] == application)
    trainee = (await register.get(f"/trainees/{slug}", headers=API)).json()
    assert (trainee["first_names"], trainee["record_source"]) == ("Boris", "apply")

    submitted_for_trn = await register.post(f"/trainees/{slug}/submit-for-trn", headers=API)
    assert submitted_for_trn.is_success, submitted_for_trn.text

    async def trn_received() -> bool:
        return (await register.get(f"/trainees/{slug}", headers=API)).json()["trn"] is not None

    took = await hops.until(
        "Register -> DQT -> Register: TRN requested, issued, copied",
        trn_received,
        "1m",
        timedelta(days=4),
    )
    # DQT answers after its 2 hours; Register polls a minute after asking, then hourly
    assert took == timedelta(hours=2, minutes=1)
    trn = (await register.get(f"/trainees/{slug}", headers=API)).json()["trn"]
    person = (await dqt.get(f"/v3/teachers/{trn}", headers=AUDITOR)).json()
    assert (person["firstName"], person["lastName"], person["qts"]) == ("Boris", "Brown", None)

    recommended = await register.post(f"/trainees/{slug}/recommend-for-award", json={}, headers=API)
    assert recommended.is_success, recommended.text

    async def holds_qts() -> bool:
        return (await dqt.get(f"/v3/teachers/{trn}", headers=AUDITOR)).json()["qts"] is not None

    await hops.until(
        "Register -> DQT: QTS recommended, teacher holds QTS", holds_qts, "1m", timedelta(hours=1)
    )
    assert (await register.get(f"/trainees/{slug}", headers=API)).json()["state"] == "awarded"
    total = sum((took for _, took in hops.taken), timedelta())
    print(f"{'course published to teacher with QTS':<58} {total}")
