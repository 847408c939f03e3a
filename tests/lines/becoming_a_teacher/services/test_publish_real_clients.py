"""A client shaped like the real Apply's sync copies Publish through API v1, as the spec says."""

import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lines.becoming_a_teacher import seed
from serviceline.model.lines import Size
from serviceline.testing import ADMIN, API, in_process_line
from tests.spec_schemas import conforms

pytestmark = pytest.mark.anyio

SPEC = "publish-public-v1.json"
CYCLE = "/api/public/v1/recruitment_cycles/2027"
# SyncCourses: API_COURSE_DRAFT_STATES
DRAFT_STATES = ("rolled_over", "draft")
# SyncSites#vacancy_status: the course option's vacancies per study mode
VACANCIES = {
    "no_vacancies": {"full_time": "no_vacancies", "part_time": "no_vacancies"},
    "both_full_time_and_part_time_vacancies": {"full_time": "vacancies", "part_time": "vacancies"},
    "full_time_vacancies": {"full_time": "vacancies", "part_time": "no_vacancies"},
    "part_time_vacancies": {"full_time": "no_vacancies", "part_time": "vacancies"},
}


@dataclass
class RealApplySync:
    """SyncAllProvidersAndCourses, SyncProvider, SyncCourses, SyncSites: as the real jobs read."""

    publish: httpx.AsyncClient
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    sites: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    course_options: dict[tuple[str, str, str], str] = field(default_factory=dict)
    requests: int = 0

    async def get(self, path: str, schema: str, **params: Any) -> dict[str, Any]:
        self.requests += 1
        response = await self.publish.get(path, params=params)
        assert response.status_code == 200, f"{path}: {response.text}"
        body: dict[str, Any] = response.json()
        conforms(SPEC, body, schema)
        return body

    async def sync_all(self, updated_since: datetime | None = None) -> None:
        page_number, last_page = 0, False
        while not last_page:
            page_number += 1
            params: dict[str, Any] = {"page[page]": page_number, "page[per_page]": 500}
            if updated_since is not None:  # json_api_client sends a Time as Time#to_s
                params["filter[updated_since]"] = f"{updated_since:%Y-%m-%d %H:%M:%S} UTC"
            body = await self.get(f"{CYCLE}/providers", "ProviderListResponse", **params)
            for provider in body["data"]:
                await self.sync_provider(provider["attributes"])
            last_page = body.get("links", {}).get("next") is None

    async def sync_provider(self, attributes: dict[str, Any]) -> None:
        self.providers[attributes["code"]] = {
            "name": attributes["name"],
            "postcode": attributes.get("postcode"),
            "region_code": attributes.get("region_code"),
            "provider_type": attributes["provider_type"],
            "latitude": attributes.get("latitude"),
            "longitude": attributes.get("longitude"),
            "selectable_school": attributes["selectable_school"],
        }
        path = f"{CYCLE}/providers/{attributes['code']}/courses"
        body = await self.get(path, "CourseListResponse", **{"page[per_page]": 500})
        for course in body["data"]:
            course_from_api = course["attributes"]
            if course_from_api["state"] in DRAFT_STATES:
                continue
            self.courses[course_from_api["uuid"]] = self.course_attributes(course_from_api)
            await self.sync_sites(attributes["code"], course_from_api)

    def course_attributes(self, course: dict[str, Any]) -> dict[str, Any]:
        copied = {
            name: course.get(name)
            for name in (
                "accept_english_gcse_equivalency",
                "accept_gcse_equivalency",
                "accept_maths_gcse_equivalency",
                "accept_pending_gcse",
                "accept_science_gcse_equivalency",
                "additional_gcse_equivalencies",
                "application_status",
                "can_sponsor_skilled_worker_visa",
                "can_sponsor_student_visa",
                "code",
                "course_length",
                "degree_grade",
                "degree_subject_requirements",
                "fee_domestic",
                "fee_international",
                "funding_type",
                "level",
                "name",
                "program_type",
                "qualifications",
                "salary_details",
                "start_date",
                "visa_sponsorship_application_deadline_at",
            )
        }
        mode = course["study_mode"]
        return {
            **copied,
            "description": course["summary"],
            "exposed_in_find": course["findable"],
            "withdrawn": course["state"] == "withdrawn",
            "study_mode": "full_time_or_part_time" if mode == "both" else mode,
            "age_range": f"{course['age_minimum']} to {course['age_maximum']}",
            "accredited_provider": course.get("accredited_body_code"),
        }

    async def sync_sites(self, provider_code: str, course: dict[str, Any]) -> None:
        path = f"{CYCLE}/providers/{provider_code}/courses/{course['code']}/locations"
        body = await self.get(
            path, "CourseLocationListResponse", include="location_status", **{"page[per_page]": 500}
        )
        statuses = {(r["type"], r["id"]): r["attributes"] for r in body.get("included", [])}
        for site in body["data"]:
            attributes = site["attributes"]
            self.sites[(provider_code, attributes["code"])] = {
                "uuid": attributes["uuid"],
                "name": attributes["name"],
                "address_line1": attributes.get("street_address_1"),
                "address_line2": attributes.get("street_address_2"),
                "address_line3": attributes.get("city"),
                "address_line4": attributes.get("county"),
                "postcode": attributes.get("postcode"),
                "latitude": attributes.get("latitude"),
                "longitude": attributes.get("longitude"),
            }
            link = site["relationships"]["location_status"]["data"]
            status = statuses[(link["type"], link["id"])]
            modes = (
                ["full_time", "part_time"]
                if course["study_mode"] == "both"
                else [course["study_mode"]]
            )
            for mode in modes:
                option = (course["uuid"], attributes["code"], mode)
                self.course_options[option] = VACANCIES[status["vacancy_status"]][mode]


async def records(publish: httpx.AsyncClient, entity: str) -> list[dict[str, Any]]:
    body = (await publish.get(f"/records/{entity}", params={"limit": 1000}, headers=API)).json()
    found: list[dict[str, Any]] = body["records"]
    return found


@pytest.fixture
async def publish(state_dir: Path) -> Any:
    rng = random.Random(7)
    volumes = seed.VOLUMES[Size.SMALL]
    plan = seed.publish(rng, volumes, seed.schools(rng, volumes.schools))
    async with in_process_line(["publish"], state_dir) as line:
        client = line["publish"]
        answer = await client.post("/providers/batch", json=plan.providers, headers=API)
        assert answer.status_code == 201, answer.text
        for code, sites in plan.sites.items():
            assert (
                await client.post(f"/providers/{code}/sites/batch", json=sites, headers=API)
            ).status_code == 201
            if plan.courses[code]:
                made = await client.post(
                    f"/providers/{code}/courses/batch", json=plan.courses[code], headers=API
                )
                assert made.status_code == 201, made.text
        yield client


async def test_the_real_apply_sync_copies_what_publish_holds(publish: httpx.AsyncClient) -> None:
    apply = RealApplySync(publish)
    await apply.sync_all()

    providers = {p["code"]: p for p in await records(publish, "provider")}
    assert set(apply.providers) == set(providers)
    for code, copied in apply.providers.items():
        owned = providers[code]
        assert copied == {name: owned.get(name) for name in copied}, code

    courses = {c["uuid"]: c for c in await records(publish, "course")}
    synced = {uuid for uuid, c in courses.items() if c["state"] not in DRAFT_STATES}
    assert set(apply.courses) == synced
    assert len(synced) < len(courses)  # the seed has drafts: the real sync leaves them out
    for uuid, copied in apply.courses.items():
        owned = courses[uuid]
        assert copied["name"] == owned["name"]
        assert copied["accredited_provider"] == owned["accredited_provider_code"]
        assert copied["fee_domestic"] == owned["fee_domestic"]
        assert copied["can_sponsor_student_visa"] == owned["can_sponsor_student_visa"]
        assert copied["description"]  # the summary Apply shows as the course's description

    sites = {(s["provider_code"], s["code"]): s for s in await records(publish, "site")}
    used = {
        (courses[u]["provider_code"], code) for u in synced for code in courses[u]["site_codes"]
    }
    assert set(apply.sites) == used
    for key, copied in apply.sites.items():
        assert copied["address_line4"] == sites[key]["county"]
        assert copied["latitude"] == sites[key]["latitude"]
    assert set(apply.course_options.values()) == {"vacancies"}
    # one request per provider page, per provider and per synced course: the cost of this shape
    assert apply.requests == 1 + len(providers) + len(synced)


async def test_an_incremental_sync_reads_only_providers_changed_since(
    publish: httpx.AsyncClient,
) -> None:
    first = RealApplySync(publish)
    await first.sync_all()
    await publish.post("/admin/clock/advance", json={"by": "3h"}, headers=ADMIN)
    code = next(iter(first.providers))
    assert (
        await publish.patch(f"/providers/{code}", json={"name": "Renamed SCITT"}, headers=API)
    ).status_code == 200
    later = RealApplySync(publish)
    await later.sync_all(datetime.fromisoformat("2026-10-05T01:00:00+00:00"))
    assert later.providers == {code: {**first.providers[code], "name": "Renamed SCITT"}}
