"""Apply's register API: the recruited applications Register reads, as the 2021 spec shapes them."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import ValidationError

from serviceline.testing import API, LineUnderTest, headers_of, in_process_line
from tests import builders, spec_schemas
from tests.spec_schemas import ok

pytestmark = pytest.mark.anyio

REGISTER = headers_of("register", "apply")
VENDOR = headers_of("manage", "apply")
APPLICATIONS = "/register-api/applications"
CYCLE = {"recruitment_cycle_year": "2027"}
conforms = functools.partial(spec_schemas.conforms, "apply-register-api-v1-2021.yml")


def refused(response: httpx.Response, code: int, *words: str) -> Any:
    assert response.status_code == code, response.text
    for word in words:
        assert word in response.text, response.text
    return response.json()


async def course_in_apply(line: LineUnderTest) -> str:
    await builders.publish_provider(line, builders.provider(), builders.site())
    created = await line["publish"].post(
        "/providers/2FR/courses", json=builders.course(), headers=API
    )
    assert created.status_code == 201, created.text
    await line.control.sync()
    uuid: str = created.json()["uuid"]
    return uuid


async def recruit(line: LineUnderTest, id: str) -> None:
    """An unconditional offer, accepted: the candidate is recruited at once."""
    offer = {"data": {"conditions": []}, "meta": builders.vendor_meta()}
    ok(await line["apply"].post(f"/api/v1/applications/{id}/offer", json=offer, headers=VENDOR))
    accepted = ok(await line["apply"].post(f"/applications/{id}/accept-offer", headers=API))
    assert accepted["status"] == "recruited"


async def test_only_recruited_applications_are_served_in_the_spec_shape(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        course = await course_in_apply(line)
        recruited = await builders.submitted(line["apply"], course, "recruited@example.com")
        waiting = await builders.submitted(line["apply"], course, "waiting@example.com")
        leaving = await builders.submitted(line["apply"], course, "leaving@example.com")
        for id in (recruited, leaving):
            await recruit(line, id)
        await line.control.advance(by="1h")
        ok(await line["apply"].post(f"/applications/{leaving}/withdraw", headers=API))

        response = await line["apply"].get(APPLICATIONS, params=CYCLE, headers=REGISTER)
        listed = ok(response)
        conforms(listed, "MultipleApplicationsResponse")
        assert response.headers["Total-Pages"] == "1"
        assert [a["id"] for a in listed["data"]] == [recruited, leaving]
        assert waiting not in str(listed)
        first, withdrawn = (a["attributes"] for a in listed["data"])
        assert (first["status"], withdrawn["status"]) == ("recruited", "withdrawn")
        assert withdrawn["recruited_at"] is not None
        assert first["course"] == {
            "recruitment_cycle_year": 2027,
            "training_provider_code": "2FR",
            "course_code": "3GTY",
            "site_code": "A",
            "study_mode": "full_time",
        }
        candidate = first["candidate"]
        assert (candidate["first_name"], candidate["last_name"]) == ("Boris", "Brown")
        assert (candidate["date_of_birth"], candidate["uk_residency_status_code"]) == (
            "1985-02-13",
            "A",
        )
        assert first["contact_details"]["email"] == "recruited@example.com"
        assert first["support_reference"] == candidate["id"]

        since = {**CYCLE, "changed_since": "2026-10-05T00:30:00Z"}
        changed = ok(await line["apply"].get(APPLICATIONS, params=since, headers=REGISTER))
        assert [a["id"] for a in changed["data"]] == [leaving]
        other_cycle = {"recruitment_cycle_year": "2026"}
        assert ok(await line["apply"].get(APPLICATIONS, params=other_cycle, headers=REGISTER)) == {
            "data": []
        }


async def test_pages_are_counted_in_a_total_pages_header(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir, page_size=2) as line:
        course = await course_in_apply(line)
        ids = [
            await builders.submitted(line["apply"], course, f"recruit{n}@example.com")
            for n in range(3)
        ]
        for id in ids:
            await recruit(line, id)
            await line.control.advance(by="1m")

        pages = []
        for page in ("1", "2", "3"):
            params = {**CYCLE, "page": page}
            response = await line["apply"].get(APPLICATIONS, params=params, headers=REGISTER)
            assert response.headers["Total-Pages"] == "2"
            pages.append([a["id"] for a in ok(response)["data"]])
        assert pages == [ids[:2], ids[2:], []]


async def test_refusals_take_the_spec_shape(state_dir: Path) -> None:
    async with in_process_line(["apply"], state_dir) as line:
        apply = line["apply"]
        # no token is 401; another's token (a vendor's, the operator's) is 403
        for headers, code in (({}, 401), (VENDOR, 403), (API, 403)):
            body = refused(await apply.get(APPLICATIONS, params=CYCLE, headers=headers), code)
            conforms(body, "UnauthorizedResponse")
        missing = refused(
            await apply.get(APPLICATIONS, headers=REGISTER), 422, "recruitment_cycle_year"
        )
        conforms(missing, "ParameterMissingResponse")
        assert missing["errors"][0]["error"] == "ParameterMissing"
        # the real API's words; a year is invalid unless providers see it: this cycle or the last
        for params, message in (
            ({"recruitment_cycle_year": "next"}, "Parameter is invalid: recruitment_cycle_year"),
            ({"recruitment_cycle_year": "2025"}, "Parameter is invalid: recruitment_cycle_year"),
            (
                {**CYCLE, "changed_since": "yesterday"},
                "Parameter is invalid (should be ISO8601): changed_since",
            ),
            ({**CYCLE, "page": "0"}, "Parameter is invalid: page"),
        ):
            invalid = refused(await apply.get(APPLICATIONS, params=params, headers=REGISTER), 422)
            conforms(invalid, "ParameterInvalidResponse")
            assert invalid["errors"] == [{"error": "ParameterInvalid", "message": message}]
        # a first import sends no time: a blank one lists everything, as the real API does
        blank = {**CYCLE, "changed_since": ""}
        assert ok(await apply.get(APPLICATIONS, params=blank, headers=REGISTER)) == {"data": []}


def test_the_spec_check_can_fail() -> None:
    with pytest.raises(ValidationError):
        conforms(
            {"data": [{"id": "11fc0d3b2f", "type": "application"}]}, "MultipleApplicationsResponse"
        )


SPEC = "apply-register-api-v1-2021.yml"


@dataclass
class RegisterImport:
    """Register's import from Apply, as ApplyApi::ImportApplicationsJob runs it.

    For each cycle it imports, RetrieveApplications asks for `recruitment_cycle_year` and
    `changed_since`: the time of the last successful import in ISO 8601 UTC, blank before the
    first. It reads page after page while `Total-Pages` says there are more. ImportApplication
    keeps each application by Apply's id, the last answer winning, when Register knows its
    training provider (the real one also skips universities by `course.training_provider_type`,
    a field the 2021 spec does not have). The import's time is noted once it has succeeded.
    """

    client: httpx.AsyncClient
    providers: set[str]
    years: tuple[int, ...] = (2026, 2027)
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_success: datetime | None = None
    requests: int = 0

    async def run(self, now: datetime) -> set[str]:
        """One import; returns the ids it stored."""
        stored = set()
        for year in self.years:
            async for application in self.retrieve(year):
                if application["attributes"]["course"]["training_provider_code"] in self.providers:
                    self.applications[application["id"]] = application
                    stored.add(application["id"])
        self.last_success = now
        return stored

    async def retrieve(self, year: int) -> AsyncIterator[dict[str, Any]]:
        since = (
            self.last_success.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if self.last_success
            else ""
        )
        page = 1
        while True:
            params = {
                "recruitment_cycle_year": str(year),
                "changed_since": since,
                "page": str(page),
            }
            response = await self.client.get(APPLICATIONS, params=params, headers=REGISTER)
            self.requests += 1
            for application in spec_schemas.answers(SPEC, "GET", "/applications", response)["data"]:
                yield application
            if int(response.headers.get("Total-Pages", "1")) <= page:
                return
            page += 1


def draft_trainee(application: dict[str, Any]) -> dict[str, Any]:
    """What Trainees::CreateFromApply takes from an imported application."""
    attributes = application["attributes"]
    candidate, contact = attributes["candidate"], attributes["contact_details"]
    trainee = {
        "first_names": candidate["first_name"],
        "last_name": candidate["last_name"],
        "date_of_birth": candidate["date_of_birth"],
        "email": contact["email"],
        "course_code": attributes["course"]["course_code"],
        "nationalities": candidate["nationality"],
        "disabilities": candidate["disabilities"],
        "degrees": attributes["qualifications"]["degrees"],
    }
    if contact["country"] != "GB":
        return {**trainee, "international_address": contact["address_line1"]}
    return {
        **trainee,
        "address_line_one": contact["address_line1"],
        "address_line_two": contact.get("address_line2"),
        "town_city": contact.get("address_line3"),
        "postcode": contact["postcode"],
    }


async def matches_apply(line: LineUnderTest, register: RegisterImport) -> None:
    """Each application Register holds, and the trainee it drafts, say what Apply holds."""
    for id, imported in register.applications.items():
        held = ok(await line["apply"].get(f"/applications/{id}", headers=API))
        candidate = ok(await line["apply"].get(f"/candidates/{held['candidate_id']}", headers=API))
        assert imported["attributes"]["status"] == held["status"]
        assert imported["attributes"]["support_reference"] == held["candidate_id"]
        assert draft_trainee(imported) == {
            "first_names": held["first_name"],
            "last_name": held["last_name"],
            "date_of_birth": held["date_of_birth"],
            "email": candidate["email"],
            "course_code": "3GTY",
            "nationalities": held["nationality"],
            "disabilities": [],
            "degrees": [],
            "address_line_one": candidate["address_line1"],
            "address_line_two": None,
            "town_city": None,
            "postcode": candidate["postcode"],
        }


async def test_registers_import_copies_recruited_applications_as_apply_holds_them(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply"], state_dir, page_size=2) as line:
        course = await course_in_apply(line)
        # a provider Register does not know: the import passes over its applications
        unknown = await builders.publish_course(
            line, builders.provider("1UR"), builders.course(), builders.site()
        )
        await line.control.sync()
        ids = [
            await builders.submitted(line["apply"], course, f"recruit{n}@example.com")
            for n in range(3)
        ]
        elsewhere = await builders.submitted(line["apply"], unknown, "elsewhere@example.com")
        waiting = await builders.submitted(line["apply"], course, "waiting@example.com")
        for id in (*ids, elsewhere):
            await recruit(line, id)
        register = RegisterImport(line["apply"], providers={"2FR"})

        await line.control.advance(by="1h")
        assert await register.run(await line.control.now()) == set(ids)
        # four recruited in 2027 at two a page, and one empty page for 2026
        assert register.requests == 3
        assert waiting not in register.applications
        await matches_apply(line, register)

        await line.control.advance(by="1h")
        ok(await line["apply"].post(f"/applications/{ids[0]}/withdraw", headers=API))
        late = await builders.submitted(line["apply"], course, "late@example.com")
        await recruit(line, late)
        assert await register.run(await line.control.now()) == {ids[0], late}
        assert register.applications[ids[0]]["attributes"]["status"] == "withdrawn"
        await matches_apply(line, register)
