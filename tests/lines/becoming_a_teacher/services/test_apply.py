"""Apply: its copies of Publish (read as the real Apply reads them), submissions, vendor API v1."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, text
from sqlmodel import Session, select

from lines.becoming_a_teacher.services.apply.models import CANDIDATE_NUMBER
from lines.becoming_a_teacher.services.apply.routes import next_candidate_number
from serviceline.runtime.db import make_engine
from serviceline.testing import (
    ADMIN,
    API,
    AUDITOR,
    LineUnderTest,
    database_url,
    headers_of,
    in_process_line,
    names_field,
    refusal,
)
from tests import builders, spec_schemas
from tests.spec_schemas import ok

pytestmark = pytest.mark.anyio

VENDOR = headers_of("manage", "apply")
conforms = functools.partial(spec_schemas.conforms, "apply-vendor-api-v1.0.yml")


def created(response: httpx.Response) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


def refused(response: httpx.Response, code: int, *words: str) -> str:
    assert response.status_code == code, response.text
    said = refusal(response) if code == 422 else response.text
    for word in words:
        assert word in said, response.text
    return said


async def seed_publish(line: LineUnderTest) -> dict[str, Any]:
    """Provider 2FR with sites A and B and course 3GTY (study mode `both`), created in Publish."""
    publish = line["publish"]
    created(await publish.post("/providers", json=builders.provider(), headers=API))
    sites = created(
        await publish.post(
            "/providers/2FR/sites/batch",
            json=[builders.site("A"), builders.site("B", name="Bow School")],
            headers=API,
        )
    )
    course = created(
        await publish.post(
            "/providers/2FR/courses", json=builders.course(site_codes=["A", "B"]), headers=API
        )
    )
    return {"course": course["uuid"], "sites": {site["code"]: site["uuid"] for site in sites}}


async def submit_raw(line: LineUnderTest, course_uuid: str, **overrides: Any) -> httpx.Response:
    """A new candidate applies to one course."""
    candidate = created(
        await line["apply"].post("/candidates", json=builders.candidate(), headers=API)
    )
    body = builders.application(candidate["id"], course_uuid, **overrides)
    return await line["apply"].post("/applications", json=body, headers=API)


async def submit(line: LineUnderTest, course_uuid: str, **overrides: Any) -> dict[str, Any]:
    application: dict[str, Any] = created(await submit_raw(line, course_uuid, **overrides))
    return application


async def vendor_post(
    line: LineUnderTest, application_id: str, action: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"meta": builders.vendor_meta()}
    if data is not None:
        body["data"] = data
    return await line["apply"].post(
        f"/api/v1/applications/{application_id}/{action}", json=body, headers=VENDOR
    )


async def test_copies_follow_the_edge_mapping(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        publish = line["publish"]
        withdrawn = created(
            await publish.post(
                "/providers/2FR/courses",
                json=builders.course("X100", state="withdrawn", findable=False),
                headers=API,
            )
        )
        rolled = created(
            await publish.post(
                "/providers/2FR/courses",
                json=builders.course("R100", state="rolled_over", study_mode="part_time"),
                headers=API,
            )
        )
        await line.control.sync()

        course = await line.copy_of("apply", "course", seeded["course"])
        assert course["study_mode"] == "full_time_or_part_time"
        assert (course["withdrawn"], course["exposed_in_find"]) == (False, True)
        assert "state" not in course
        assert "findable" not in course
        gone = await line.copy_of("apply", "course", withdrawn["uuid"])
        assert (gone["withdrawn"], gone["exposed_in_find"]) == (True, False)
        # SyncCourses skips drafts and rolled-over courses: Apply holds no copy of them
        rolled_copy = await line["apply"].get(f"/copies/course/{rolled['uuid']}", headers=API)
        assert rolled_copy.status_code == 404
        assert (await line.copy_of("apply", "provider", "2FR"))["accredited_body"] is True
        site = await line.copy_of("apply", "site", seeded["sites"]["B"])
        assert (site["provider_code"], site["code"], site["name"]) == ("2FR", "B", "Bow School")


async def test_updated_since_rereads_two_hours_behind_its_cursor(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        first = await line.control.run_edge("publish.course.apply")
        start = datetime.fromisoformat(first["result"]["cursor"])
        assert first["result"]["upserted"] == 1

        ran = await line.control.advance(by="3h")
        fetched = {
            datetime.fromisoformat(job["due_at"]) - start: job["result"]["fetched"]
            for job in ran
            if job["job"] == "publish.course.apply"
        }
        # each run asks for changes since its cursor less 2 h: the course, changed at the start,
        # is read again (and left unchanged) until a cursor lies 2 h past that change
        assert [f for delta, f in sorted(fetched.items()) if delta.total_seconds() <= 7200] == [
            1
        ] * 12
        assert {f for delta, f in fetched.items() if delta.total_seconds() > 7200} == {0}
        assert all(
            job["result"]["upserted"] == 0 for job in ran if job["job"] == "publish.course.apply"
        )

        # Apply's clock runs an hour ahead of Publish's: a change Publish stamps behind Apply's
        # cursor (as a late commit would be) still arrives, inside the overlap
        skew = await line["apply"].post("/admin/clock/advance", json={"by": "1h"}, headers=ADMIN)
        assert skew.status_code == 200, skew.text
        renamed = await line["publish"].patch(
            f"/courses/{seeded['course']}", json={"name": "Art and Design (11-16)"}, headers=API
        )
        stamped = datetime.fromisoformat(ok(renamed)["updated_at"])
        assert stamped < datetime.fromisoformat(ok(skew)["now"])
        assert (await line.control.run_edge("publish.course.apply"))["result"]["upserted"] == 1
        copy = await line.copy_of("apply", "course", seeded["course"])
        assert copy["name"] == "Art and Design (11-16)"


APPLY_SYNC = ("publish.provider.apply", "publish.course.apply", "publish.site.apply")


async def real_sync_requests(line: LineUnderTest, providers: list[str]) -> int:
    """What the real job asks: a page of these providers, their course lists, and a location
    list for each of their courses but drafts and rolled-over ones."""
    body = (await line["publish"].get("/records/course", params={"limit": 1000})).json()
    synced = [
        c
        for c in body["records"]
        if c["provider_code"] in providers and c["state"] not in ("draft", "rolled_over")
    ]
    return 1 + len(providers) + len(synced)


async def test_one_walk_copies_providers_courses_and_sites_at_the_real_jobs_cost(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await builders.publish_course(
            line,
            builders.provider("1TZ", name="Bath Spa University"),
            builders.course("C101", site_codes=["M"]),
            builders.site("M", name="Mendip School", urn="100002"),
        )
        created(
            await line["publish"].post(
                "/providers/2FR/courses", json=builders.course("D100", state="draft"), headers=API
            )
        )
        await line.control.sync()
        await line.control.advance(by="3h")  # past the overlap: no provider is read again
        # a course's change moves its provider's changed_at: 2FR is listed, and what the change
        # could alter, its course list and the course's locations, is asked again
        path = f"/courses/{seeded['course']}"
        renamed = await line["publish"].patch(path, json={"name": "Art"}, headers=API)
        assert renamed.status_code == 200, renamed.text

        def asked() -> list[str]:
            # the job's requests; the simulation's own look at Publish's log is on the feed
            calls = [call.path for call in line.calls if call.caller == "apply"]
            return [path for path in calls if not path.startswith("/feed/")]

        before = len(asked())
        ran = await line.control.advance(by="10m")
        walked = asked()[before:]
        assert len(walked) == await real_sync_requests(line, ["2FR"]) == 3
        assert len(set(walked)) == len(walked)  # no request made twice
        spent = {job["job"]: job["result"]["requests"] for job in ran if job["job"] in APPLY_SYNC}
        # each edge's run counts the requests that fetched its own entity
        assert spent == dict(zip(APPLY_SYNC, (1, 1, 1), strict=True))
        copied = await line.copy_of("apply", "course", seeded["course"])
        assert copied["name"] == "Art"

        before = len(asked())
        ran = await line.control.advance(to=datetime.fromisoformat("2026-10-10T00:59:00Z"))
        full = [job for job in ran if job["job"].endswith(":full")]
        assert [job["job"] for job in full] == [f"{edge}:full" for edge in APPLY_SYNC]
        spent = {job["job"]: job["result"]["requests"] for job in full}
        assert sum(spent.values()) == await real_sync_requests(line, ["2FR", "1TZ"]) == 5
        assert list(spent.values()) == [1, 2, 2]
        # the full walk counts all the real job asks; what nothing touched since it was last
        # read is taken again (serviceline.consumer.known_walks): the week asked only for listings
        listings = asked()[before:]
        assert listings
        assert all(path.endswith("/recruitment_cycles/2027/providers") for path in listings)


async def test_vanished_site_in_use_is_flagged_and_unused_one_deleted(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        application = await submit(line, seeded["course"], site_code="A")
        assert application["site_still_valid"] is True

        for code in ("A", "B"):
            deleted = await line["publish"].delete(f"/sites/{seeded['sites'][code]}", headers=API)
            assert deleted.status_code == 204, deleted.text
        stats = (await line.control.run_edge("publish.site.apply"))["result"]
        assert (stats["flagged"], stats["deleted"]) == (1, 1)
        # a copy flagged already is not flagged again, nor logged again
        again = (await line.control.run_edge("publish.site.apply"))["result"]
        assert (again["flagged"], again["deleted"]) == (0, 0)
        applied = (await line["apply"].get("/admin/applied", headers=ADMIN)).json()["applied"]
        removed = [(a["key"], a["op"], a["version"]) for a in applied if a["op"] != "upsert"]
        assert sorted(removed) == sorted(
            [(seeded["sites"]["A"], "flag", None), (seeded["sites"]["B"], "delete", None)]
        )

        kept = await line.copy_of("apply", "site", seeded["sites"]["A"])
        assert kept["source_deleted_at"] is not None
        refused(await line["apply"].get(f"/copies/site/{seeded['sites']['B']}"), 404)
        assert (
            ok(await line["apply"].get(f"/applications/{application['id']}", headers=API))[
                "site_still_valid"
            ]
            is False
        )
        refused(await submit_raw(line, seeded["course"], site_code="A"), 422, "site_code")

        # a site of that code listed again makes the application's site valid again
        created(
            await line["publish"].post("/providers/2FR/sites", json=builders.site(), headers=API)
        )
        await line.control.run_edge("publish.site.apply")
        assert (
            ok(await line["apply"].get(f"/applications/{application['id']}", headers=API))[
                "site_still_valid"
            ]
            is True
        )


async def test_hard_deleted_course_outlives_incremental_sync(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        course = seeded["course"]
        assert (await line["publish"].delete(f"/courses/{course}", headers=API)).status_code == 204

        stats = (await line.control.run_edge("publish.course.apply"))["result"]
        assert (stats["fetched"], stats["deleted"]) == (0, 0)
        await line.copy_of("apply", "course", course)
        # the orphaned copy still takes applications: drift a candidate can act on
        application = await submit(line, course)

        stats = (await line.control.run_edge("publish.course.apply", full=True))["result"]
        assert stats["deleted"] == 1
        refused(await line["apply"].get(f"/copies/course/{course}"), 404)
        refused(await submit_raw(line, course), 422, "course_uuid")
        read = ok(
            await line["apply"].get(f"/api/v1/applications/{application['id']}", headers=VENDOR)
        )
        assert "start_date" not in read["data"]["attributes"]["course"]
        conforms(read, "SingleApplicationResponse")


async def test_submission_is_checked_against_apply_copies_only(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        course = seeded["course"]
        refused(await submit_raw(line, course), 422, "course_uuid", "copy")  # not yet synced
        full_time = created(
            await line["publish"].post(
                "/providers/2FR/courses",
                json=builders.course("F100", study_mode="full_time"),
                headers=API,
            )
        )
        withdrawn = created(
            await line["publish"].post(
                "/providers/2FR/courses",
                json=builders.course("W100", state="withdrawn"),
                headers=API,
            )
        )
        await line.control.sync()

        refused(await submit_raw(line, "no-such-course"), 422, "course_uuid")
        refused(await submit_raw(line, withdrawn["uuid"]), 422, "course_uuid", "withdrawn")
        refused(await submit_raw(line, course, site_code="Z"), 422, "site_code", "'Z'")
        refused(
            await submit_raw(line, full_time["uuid"], study_mode="part_time"), 422, "study_mode"
        )
        refused(await submit_raw(line, course, date_of_birth="13/02/1985"), 422, "date_of_birth")
        body = builders.application("C9999", course)
        refused(await line["apply"].post("/applications", json=body, headers=API), 422, "C9999")

        application = await submit(line, course, study_mode="part_time", site_code="B")
        assert application["status"] == "awaiting_provider_decision"
        assert (application["provider_code"], application["course_code"]) == ("2FR", "3GTY")
        assert application["submitted_at"].startswith("2026-10-05T00:00:00")
        assert len(application["id"]) == 10
        int(application["id"], 16)
        again = builders.application(application["candidate_id"], course)
        refused(
            await line["apply"].post("/applications", json=again, headers=API),
            422,
            "course_uuid",
            "already applied",
        )
        batch = [builders.application(application["candidate_id"], full_time["uuid"]), again]
        refused(
            await line["apply"].post("/applications/batch", json=batch, headers=API),
            422,
            "[1] course_uuid",
        )
        refused(await line["apply"].post("/applications", json=again), 401)


async def test_batches_seed_candidates_and_applications(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        candidates = created(
            await line["apply"].post(
                "/candidates/batch",
                json=[builders.candidate(f"c{n}@example.com") for n in range(3)],
                headers=API,
            )
        )
        assert [c["id"] for c in candidates] == ["C1000", "C1001", "C1002"]
        body = [builders.application(c["id"], seeded["course"]) for c in candidates]
        applications = created(
            await line["apply"].post("/applications/batch", json=body, headers=API)
        )
        assert len({a["id"] for a in applications}) == 3
        changes = ok(await line["apply"].get("/feed/application", headers=AUDITOR))["changes"]
        assert {c["key"] for c in changes} == {a["id"] for a in applications}
        patched = await line["apply"].patch(
            "/candidates/C1001", json={"phone_number": "01632 960000"}, headers=API
        )
        assert ok(patched)["version"] == 2
        nulled = await line["apply"].patch("/candidates/C1001", json={"email": None}, headers=API)
        refused(nulled, 422, "email", "not set to null")


async def test_a_batch_can_carry_each_application_history_through_the_state_machine(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        candidate = created(
            await line["apply"].post("/candidates", json=builders.candidate(), headers=API)
        )
        recruited = builders.application(
            candidate["id"],
            seeded["course"],
            history=["make_offer", "accept", "confirm_conditions_met"],
            offer_conditions=["DBS check"],
        )
        stored = created(
            await line["apply"].post("/applications/batch", json=[recruited], headers=API)
        )[0]
        assert stored["status"] == "recruited"
        assert stored["offer_conditions"] == ["DBS check"]
        assert stored["recruited_at"] == stored["offer_made_at"] == stored["submitted_at"]
        other = created(
            await line["apply"].post(
                "/candidates", json=builders.candidate("other@example.com"), headers=API
            )
        )
        impossible = builders.application(other["id"], seeded["course"], history=["accept"])
        refusal = await line["apply"].post("/applications/batch", json=[impossible], headers=API)
        refused(refusal, 422, "[0] history", "awaiting_provider_decision")


async def test_candidate_answers_offers(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        conditional = await submit(line, seeded["course"])
        ok(await vendor_post(line, conditional["id"], "offer", {"conditions": ["DBS check"]}))
        accepted = ok(
            await line["apply"].post(f"/applications/{conditional['id']}/accept-offer", headers=API)
        )
        assert accepted["status"] == "pending_conditions"
        assert accepted["offer_accepted_at"] is not None
        withdrawn = ok(
            await line["apply"].post(f"/applications/{conditional['id']}/withdraw", headers=API)
        )
        assert withdrawn["status"] == "withdrawn"
        refused(
            await line["apply"].post(
                f"/applications/{conditional['id']}/accept-offer", headers=API
            ),
            422,
            "status",
            "'withdrawn'",
        )

        unconditional = await submit(line, seeded["course"])
        ok(await vendor_post(line, unconditional["id"], "offer", {"conditions": []}))
        recruited = ok(
            await line["apply"].post(
                f"/applications/{unconditional['id']}/accept-offer", headers=API
            )
        )
        assert recruited["status"] == "recruited"
        assert recruited["recruited_at"] is not None

        declining = await submit(line, seeded["course"])
        ok(await vendor_post(line, declining["id"], "offer", {"conditions": []}))
        declined = ok(
            await line["apply"].post(f"/applications/{declining['id']}/decline-offer", headers=API)
        )
        assert declined["status"] == "declined"
        refused(await line["apply"].get("/applications/0000000000", headers=API), 404, "id")


async def test_a_new_start_date_touches_the_applications_to_the_course_as_it_is_copied(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply", "manage"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        id = (await submit(line, seeded["course"]))["id"]
        course = f"/courses/{seeded['course']}"
        for change in ({"name": "Art"}, {"start_date": "2027-10-01"}):
            ok(await line["publish"].patch(course, json=change, headers=API))
            await line.control.advance(by="10m")
        # the rename left the application as it was; the new start date, copied at 00:20, made
        # a version of it that Manage copied at its own run then
        application = ok(await line["apply"].get(f"/applications/{id}", headers=API))
        assert application["version"] == 2
        assert application["updated_at"].startswith("2026-10-05T00:20:00")
        copy = await line.copy_of("manage", "application", id)
        assert copy["source_version"] == 2
        assert copy["copied_at"] == application["updated_at"]


async def test_vendor_api_serves_applications_in_the_spec_shape(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        first = await submit(line, seeded["course"])
        await line.control.advance(by="1h")
        second = await submit(line, seeded["course"], site_code="B")

        listed = ok(
            await line["apply"].get(
                "/api/v1/applications", params={"since": "2026-10-05T00:00:00Z"}, headers=VENDOR
            )
        )
        conforms(listed, "MultipleApplicationsResponse")
        assert [a["id"] for a in listed["data"]] == [second["id"], first["id"]]
        recent = ok(
            await line["apply"].get(
                "/api/v1/applications", params={"since": "2026-10-05T00:30:00"}, headers=VENDOR
            )
        )
        assert [a["id"] for a in recent["data"]] == [second["id"]]

        read = ok(await line["apply"].get(f"/api/v1/applications/{first['id']}", headers=VENDOR))
        conforms(read, "SingleApplicationResponse")
        attributes = read["data"]["attributes"]
        assert read["data"]["type"] == "application"
        assert attributes["status"] == "awaiting_provider_decision"
        assert attributes["course"] == {
            "recruitment_cycle_year": 2027,
            "provider_code": "2FR",
            "course_code": "3GTY",
            "site_code": "A",
            "study_mode": "full_time",
            "start_date": "2027-09",
        }
        assert attributes["candidate"]["id"] == first["candidate_id"]
        assert attributes["contact_details"]["email"] == "boris.brown@example.com"
        assert attributes["offer"] is None


async def test_vendor_api_refuses_missing_since_bad_tokens_and_bodies(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        application = await submit(line, seeded["course"])
        apply = line["apply"]

        for params in ({}, {"since": "yesterday"}):
            text = refused(
                await apply.get("/api/v1/applications", params=params, headers=VENDOR), 422, "since"
            )
            conforms(httpx.Response(422, text=text).json(), "ParameterMissingResponse")

        path = f"/api/v1/applications/{application['id']}"
        # no token is 401; a token that is not a vendor's (the operator's, a guess) is 403
        for headers, code in (({}, 401), (API, 403), ({"Authorization": "Bearer guessed"}, 403)):
            response = await apply.get(path, headers=headers)
            refused(response, code, "token")
            conforms(response.json(), "UnauthorizedResponse")
        refused(await apply.get(path, headers=API), 403, "vendor")

        missing = await apply.get("/api/v1/applications/ffffffffff", headers=VENDOR)
        refused(missing, 404, "ffffffffff")
        conforms(missing.json(), "NotFoundResponse")

        no_meta = await apply.post(
            f"{path}/offer", json={"data": {"conditions": []}}, headers=VENDOR
        )
        refused(no_meta, 422, "meta")
        conforms(no_meta.json(), "UnprocessableEntityResponse")
        stray = await apply.post(
            f"{path}/reject",
            json={"data": builders.rejection(grade="A"), "meta": builders.vendor_meta()},
            headers=VENDOR,
        )
        refused(stray, 422, "data.grade")
        other_course = {
            "conditions": [],
            "course": {
                "recruitment_cycle_year": 2027,
                "provider_code": "2FR",
                "course_code": "9ZZZ",
                "study_mode": "full_time",
            },
        }
        refused(await vendor_post(line, application["id"], "offer", other_course), 422, "course")


async def test_vendor_decisions_follow_the_state_machine(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        application = await submit(line, seeded["course"])
        id = application["id"]

        offer = ok(await vendor_post(line, id, "offer", {"conditions": ["Fitness to teach check"]}))
        conforms(offer, "SingleApplicationResponse")
        assert offer["data"]["attributes"]["status"] == "offer"
        assert offer["data"]["attributes"]["offer"]["conditions"] == ["Fitness to teach check"]
        ok(await line["apply"].post(f"/applications/{id}/accept-offer", headers=API))
        recruited = ok(await vendor_post(line, id, "confirm-conditions-met"))
        conforms(recruited, "SingleApplicationResponse")
        assert recruited["data"]["attributes"]["status"] == "recruited"
        assert recruited["data"]["attributes"]["recruited_at"] is not None
        assert recruited["data"]["attributes"]["offer"]["offer_accepted_at"] is not None

        again = await vendor_post(line, id, "offer", {"conditions": []})
        refused(again, 422, "status", "'recruited'")
        conforms(again.json(), "UnprocessableEntityResponse")
        refused(await vendor_post(line, id, "conditions-not-met"), 422, "'recruited'")

        withdrawn_offer = await submit(line, seeded["course"])
        ok(await vendor_post(line, withdrawn_offer["id"], "offer", {"conditions": []}))
        rejected = ok(
            await vendor_post(line, withdrawn_offer["id"], "reject", builders.rejection())
        )
        conforms(rejected, "SingleApplicationResponse")
        assert rejected["data"]["attributes"]["status"] == "rejected"
        assert rejected["data"]["attributes"]["rejection"]["reason"] == "Course full"
        internal = ok(
            await line["apply"].get(f"/applications/{withdrawn_offer['id']}", headers=API)
        )
        assert internal["status"] == "offer_withdrawn"
        renewed = ok(await vendor_post(line, withdrawn_offer["id"], "offer", {"conditions": []}))
        assert renewed["data"]["attributes"]["status"] == "offer"
        assert renewed["data"]["attributes"]["rejection"] is None

        unmet = await submit(line, seeded["course"])
        ok(await vendor_post(line, unmet["id"], "offer", {"conditions": ["Degree"]}))
        ok(await line["apply"].post(f"/applications/{unmet['id']}/accept-offer", headers=API))
        not_met = ok(await vendor_post(line, unmet["id"], "conditions-not-met"))
        conforms(not_met, "SingleApplicationResponse")
        assert not_met["data"]["attributes"]["status"] == "conditions_not_met"


async def test_apply_refuses_writes_to_its_copies(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        seeded = await seed_publish(line)
        await line.control.sync()
        for method, path in (
            ("POST", "/copies/course"),
            ("PATCH", f"/copies/course/{seeded['course']}"),
            ("DELETE", f"/copies/site/{seeded['sites']['A']}"),
        ):
            response = await line["apply"].request(method, path, json={}, headers=API)
            refused(response, 403, "owned by publish")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"date_of_birth": "2090-01-01"}, "date_of_birth"),
        ({"date_of_birth": "1800-01-01"}, "date_of_birth"),
        ({"offer_conditions": ["Enhanced DBS check"]}, "offer_conditions"),
    ],
)
async def test_an_implausible_application_is_refused_naming_the_field(
    state_dir: Path, overrides: dict[str, Any], field: str
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        course = (await seed_publish(line))["course"]
        await line.control.sync()
        answer = await submit_raw(line, course, **overrides)
        assert answer.status_code == 422, answer.text
        assert names_field(answer, field), answer.text
        assert (await line["apply"].get("/records/application", headers=AUDITOR)).json()[
            "records"
        ] == []


async def test_candidates_are_numbered_on_from_the_highest_number_read_from_its_index(
    state_dir: Path,
) -> None:
    async with in_process_line(["apply"], state_dir) as line:
        apply = line["apply"]
        many = [builders.candidate(f"c{n}@example.com") for n in range(9000)]
        numbered = created(await apply.post("/candidates/batch", json=many, headers=API))
        assert (numbered[0]["id"], numbered[-1]["id"]) == ("C1000", "C9999")
        # C9999 sorts after C10000 as text: the number is what is compared
        more = created(await apply.post("/candidates/batch", json=many[:2], headers=API))
        assert [c["id"] for c in more] == ["C10000", "C10001"]
        one = created(await apply.post("/candidates", json=many[0], headers=API))
        assert one["id"] == "C10002"
    engine = make_engine(database_url(state_dir, "apply"))
    try:
        with Session(engine) as session:
            assert next_candidate_number(session) == 10003
        if engine.dialect.name == "sqlite":
            query = select(func.max(CANDIDATE_NUMBER)).compile(engine)
            with engine.connect() as connection:
                plan = connection.execute(text(f"EXPLAIN QUERY PLAN {query}")).all()
            assert "ix_apply_candidate_number" in str(plan), plan
    finally:
        engine.dispose()
