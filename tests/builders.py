"""Plain functions that build valid request bodies; override what a test cares about."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
import yaml

from lines.becoming_a_teacher.seed import VOLUMES
from lines.becoming_a_teacher.stubs.gias.extract import render
from lines.becoming_a_teacher.stubs.gias.models import School
from lines.becoming_a_teacher.workload.spec import Workload, default_text, parse_workload
from serviceline.model.lines import Size
from serviceline.testing import API, LineUnderTest


def school(urn: str = "100000", **overrides: Any) -> dict[str, Any]:
    return {
        "urn": urn,
        "name": "The Aldgate School",
        "status_code": "1",
        "type_code": "2",
        "group_code": "4",
        "phase_code": "2",
        "ukprn": "10079319",
        "la_code": "201",
        "la_name": "City of London",
        "street": "St James's Passage",
        "town": "London",
        "postcode": "EC3A 5DE",
        "region_code": "H",
        "minimum_age": 3,
        "maximum_age": 11,
        **overrides,
    }


def provider(code: str = "2FR", **overrides: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "UCL Institute of Education",
        "provider_type": "university",
        "accredited_body": True,
        "ukprn": "10007784",
        "postcode": "WC1H 0AL",
        "city": "London",
        "region_code": "london",
        **overrides,
    }


def site(code: str = "A", **overrides: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "The Aldgate School",
        "street_address_1": "St James's Passage",
        "city": "London",
        "postcode": "EC3A 5DE",
        "urn": "100000",
        "region_code": "london",
        **overrides,
    }


def course(code: str = "3GTY", **overrides: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Art and Design",
        "state": "published",
        "findable": True,
        "study_mode": "both",
        "level": "secondary",
        "program_type": "higher_education_programme",
        "qualifications": ["qts", "pgce"],
        "funding_type": "fee",
        "subject_codes": ["W1"],
        "age_minimum": 11,
        "age_maximum": 16,
        "start_date": "2027-09-01",
        "site_codes": ["A"],
        **overrides,
    }


def edubase_file(*schools: dict[str, Any]) -> bytes:
    """An edubasealldata CSV of these schools (see `school`), rendered as GIAS renders its own."""
    return render(School.model_validate(body) for body in schools)


def candidate(email: str = "boris.brown@example.com", **overrides: Any) -> dict[str, Any]:
    return {
        "email": email,
        "phone_number": "07700 900000",
        "address_line1": "45 Dialstone Lane",
        "postcode": "SK2 6AA",
        "country": "GB",
        **overrides,
    }


def application(candidate_id: str, course_uuid: str, **overrides: Any) -> dict[str, Any]:
    return {
        "candidate_id": candidate_id,
        "course_uuid": course_uuid,
        "site_code": "A",
        "study_mode": "full_time",
        "first_name": "Boris",
        "last_name": "Brown",
        "date_of_birth": "1985-02-13",
        "nationality": ["GB"],
        "personal_statement": "Since retiring from the Police Service in 2007...",
        **overrides,
    }


def provider_user(**overrides: Any) -> dict[str, Any]:
    return {
        "full_name": "Jane Smith",
        "email": "jane.smith@example.com",
        "user_id": "12345",
        **overrides,
    }


def vendor_meta(**overrides: Any) -> dict[str, Any]:
    return {"attribution": provider_user(), "timestamp": "2026-10-05T12:00:00Z", **overrides}


def rejection(**overrides: Any) -> dict[str, Any]:
    """A vendor API v1.0 reject's `data`: both fields are required."""
    return {"reason": "Course full", "date": "2026-10-05T12:00:00Z", **overrides}


def dqt_person(trn: str = "1234567", **overrides: Any) -> dict[str, Any]:
    """Someone DQT already holds, as POST /v3/teachers/batch takes them."""
    return {
        "trn": trn,
        "first_name": "Margaret",
        "middle_name": None,
        "last_name": "Thompson",
        "date_of_birth": "1962-04-09",
        "email": "margaret.thompson@example.com",
        "national_insurance_number": "QQ123456C",
        "status": "Active",
        "qts_date": "1985-07-01",
        "eyts_date": None,
        "induction_status": "Exempt",
        "kind": "teacher",
        **overrides,
    }


def trn_request(
    request_id: str = "2fa3e0c4-0d55-4d5c-9f0e-3b1c1f0e6a01", **person: Any
) -> dict[str, Any]:
    """Register's POST /v3/trn-requests for a trainee; `person` overrides the person's fields."""
    return {
        "requestId": request_id,
        "person": {
            "firstName": "Boris",
            "middleName": "Ivan",
            "lastName": "Brown",
            "dateOfBirth": "1985-02-13",
            "emailAddresses": ["boris.brown@example.com"],
            "nationalInsuranceNumber": "QQ654321A",
            **person,
        },
    }


def professional_status_route(status: str = "InTraining", **overrides: Any) -> dict[str, Any]:
    """Register's PUT of a trainee's route to QTS (provider-led postgraduate)."""
    return {
        "routeToProfessionalStatusTypeId": "97497716-5ac5-49aa-a444-27fa3e2c152a",
        "status": status,
        "holdsFrom": None,
        "trainingStartDate": "2026-09-01",
        "trainingEndDate": "2027-07-31",
        "trainingSubjectReferences": ["100425"],
        "trainingAgeSpecialism": {"type": "Range", "from": 11, "to": 16},
        "trainingCountryReference": "GB",
        "trainingProviderUkprn": "10007784",
        **overrides,
    }


def itt_student(husid: str = "0310261553101", **overrides: Any) -> dict[str, Any]:
    """One `<Student>` of HESA's ITT collection, as a student record system submits it."""
    return {
        "F_UKPRN": "10007713",
        "F_STATUS": "NEW",
        "F_HUSID": husid,
        "F_OWNSTU": "99157234/2/01",
        "F_BIRTHDTE": "1978-08-13",
        "F_ENTRYRTE": "02",
        "F_EXPECTEDENDDATE": "2027-07-31",
        "F_FNAMES": "Dave",
        "F_FUNDCODE": "7",
        "F_ITTAIM": "202",
        "F_ITTPHSC": "13909",
        "F_MODE": "01",
        "F_NATION": "GB",
        "F_NIN": None,
        "F_NQTEMAIL": "dave.george@example.com",
        "F_QLAIM": "032",
        "F_SDEMPLOY": None,
        "F_SDLEAD": "115795",
        "F_SEXID": "11",
        "F_SURNAME": "George",
        "F_TRN": None,
        "F_APPLYAPPLICATIONID": None,
        "F_ITTSTARTDATE": "2026-09-01",
        "F_TRAINEESTARTDATE": "2026-09-01",
        "F_SBJCA1": "100346",
        "F_SBJCA2": None,
        "F_SBJCA3": None,
        "PLACEMENTS": [{"F_PLMNTSCH": "100000", "F_PLMNTDYS": 60}],
        **overrides,
    }


def institution(provider_code: str = "1UR", **overrides: Any) -> dict[str, Any]:
    """A university setting itself up in its student record system."""
    return {
        "provider_code": provider_code,
        "ukprn": "10007163",
        "name": "University of Warwick",
        **overrides,
    }


def mentor(trn: str = "1234567", **overrides: Any) -> dict[str, Any]:
    """A school adds a mentor by TRN and date of birth (those of `dqt_person`)."""
    return {"trn": trn, "date_of_birth": "1962-04-09", "school_urn": "100000", **overrides}


def placement(school_urn: str = "100000", **overrides: Any) -> dict[str, Any]:
    """A primary placement a school offers, no provider yet."""
    return {
        "school_urn": school_urn,
        "subject_code": "00",
        "year_group": "year_3",
        "key_stage": "key_stage_2",
        "terms": ["autumn", "spring"],
        "mentor_trns": [],
        "send_specific": False,
        **overrides,
    }


def mentor_training(trn: str = "1234567", hours: int = 16, **overrides: Any) -> dict[str, Any]:
    """One mentor's training on a claim."""
    return {
        "mentor_trn": trn,
        "hours_completed": hours,
        "date_completed": "2026-09-30",
        **overrides,
    }


def claim(*trainings: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A school's draft claim for provider 2FR's mentor training."""
    return {
        "school_urn": "100000",
        "provider_code": "2FR",
        "mentor_trainings": list(trainings),
        **overrides,
    }


def register_draft(**overrides: Any) -> dict[str, Any]:
    """A trainee a provider user starts by hand in Register, in Register's own values."""
    return {
        "first_names": "Priya",
        "middle_names": "Anne",
        "last_name": "Patel",
        "date_of_birth": "1994-03-21",
        "sex": "female",
        "email": "priya.patel@example.com",
        "nationality": "GB",
        "training_route": "provider_led_postgrad",
        "study_mode": "full_time",
        "course_subject_one": "physics",
        "course_min_age": 11,
        "course_max_age": 16,
        "itt_start_date": "2026-09-01",
        "itt_end_date": "2027-07-31",
        "trainee_start_date": "2026-09-01",
        "provider_code": "2FR",
        "ukprn": "10007784",
        **overrides,
    }


def register_trainee(hesa_id: str = "2610261553101", **overrides: Any) -> dict[str, Any]:
    """A trainee as a student record system sends it to the Register API: HESA codes."""
    return {
        "data": {
            "first_names": "Priya",
            "middle_names": "Anne",
            "last_name": "Patel",
            "previous_last_name": "Shah",
            "date_of_birth": "1994-03-21",
            "sex": "10",
            "email": "priya.patel@example.com",
            "nationality": "GB",
            "ni_number": "QQ 12 34 56 C",
            "training_route": "12",
            "itt_start_date": "2026-09-01",
            "itt_end_date": "2027-07-31",
            "trainee_start_date": "2026-09-01",
            "pg_apprenticeship_start_date": "2026-09-01",
            "course_subject_1": "100425",
            "study_mode": "01",
            "itt_aim": "202",
            "itt_qualification_aim": "020",
            "course_year": "2026",
            "course_age_range": "13918",
            "fund_code": "7",
            "funding_method": "6",
            "ethnicity": "997",
            "additional_training_initiative": "026",
            "hesa_id": hesa_id,
            "provider_trainee_id": "26/27-001",
            "ukprn": "10007784",
            "provider_code": "U01",  # a university that runs SITS (topology.record_system_for)
            **overrides,
        }
    }


def logged_change(
    key: str, version: int, at: str, op: str = "upsert", **overrides: Any
) -> dict[str, Any]:
    """One row of an owner's /admin/changelog: a course of Publish's by default."""
    return {
        "seq": overrides.pop("seq", version),
        "entity": "course",
        "key": key,
        "version": version,
        "op": op,
        "changed_at": at,
        **overrides,
    }


def applied_change(
    edge: str, key: str, version: int | None, at: str, op: str = "upsert", **overrides: Any
) -> dict[str, Any]:
    """One row of a consumer's /admin/applied, read and applied at `at` unless told."""
    return {
        "id": 1,
        "edge": edge,
        "key": key,
        "version": version,
        "op": op,
        "read_at": at,
        "applied_at": at,
        **overrides,
    }


def copy_run(edge: str, at: str, mechanism: str = "feed", **overrides: Any) -> dict[str, Any]:
    """One row of a consumer's /admin/copy-runs, begun and finished at `at` unless told."""
    return {
        "id": 1,
        "edge": edge,
        "mechanism": mechanism,
        "full": False,
        "started_at": at,
        "finished_at": at,
        "requests": 1,
        "bytes": 100,
        "fetched": 0,
        "upserted": 0,
        "deleted": 0,
        "flagged": 0,
        "found_nothing": True,
        "skipped": False,
        "seen": None,
        **overrides,
    }


def busy_workload(per_day: float = 1, **decisions: Any) -> Workload:
    """The default workload's events on the small seed, all year round: `per_day` a day of
    each, at least one every working day; decisions following within the hour."""
    data = yaml.safe_load(default_text())
    small = VOLUMES[Size.SMALL]
    data["reference"] = {name: getattr(small, name) for name in data["reference"]}
    for rate in data["events"].values():
        rate.update(per_cycle=365 * per_day, months="even", weekdays="office", hours="office")
    # applications the most, as on the real line, in the mornings: their decisions and answers
    # follow the same day
    morning = [1 if 8 <= hour < 11 else 0 for hour in range(24)]
    data["events"]["application_submitted"].update(per_cycle=365 * per_day * 4, hours=morning)
    data["decisions"].update(
        decide_after_days=[0.02, 0.05],
        accept_after_days=[0.02, 0.05],
        recruit_from="oct",
        recruit_after_days=[0, 0.02],
        **decisions,
    )
    return parse_workload(yaml.safe_dump(data), "busy workload")


class CourseEdits:
    """A small workload for studies: at each moment Publish renames a course, every third one
    deleted instead, through Publish's own API."""

    def __init__(self, publish: httpx.AsyncClient, api_token: str, moments: Sequence[datetime]):
        self.publish = publish
        self.headers = {"Authorization": f"Bearer {api_token}"}
        self.moments = sorted(moments)
        self.courses: list[str] = []
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    async def prepare(self) -> None:
        answer = await self.publish.get("/records/course", params={"limit": 50})
        answer.raise_for_status()
        self.courses = [record["uuid"] for record in answer.json()["records"]]

    def next_at(self) -> datetime | None:
        return self.moments[0] if self.moments else None

    def targets_at(self, moment: datetime) -> set[str]:
        return {"publish"} if self.moments and self.moments[0] <= moment else set()

    async def fire(self, moment: datetime) -> int:
        due = [m for m in self.moments if m <= moment]
        self.moments = self.moments[len(due) :]
        for _ in due:
            await self._edit(self.courses.pop(0))
        return len(due)

    async def _edit(self, uuid: str) -> None:
        number = sum(self.counts.values()) + sum(self.failures.values()) + 1
        if number % 3 == 0:
            kind = "course_deleted"
            answer = await self.publish.delete(f"/courses/{uuid}", headers=self.headers)
        else:
            kind = "course_renamed"
            answer = await self.publish.patch(
                f"/courses/{uuid}", json={"name": f"Renamed {number}"}, headers=self.headers
            )
        (self.counts if answer.is_success else self.failures)[kind] += 1


async def submitted(apply: httpx.AsyncClient, course_uuid: str, email: str) -> str:
    """A new candidate's application to the course, submitted through Apply's API: its id."""
    made = await apply.post("/candidates", json=candidate(email), headers=API)
    assert made.status_code == 201, made.text
    body = application(made.json()["id"], course_uuid)
    answer = await apply.post("/applications", json=body, headers=API)
    assert answer.status_code == 201, answer.text
    id: str = answer.json()["id"]
    return id


async def publish_provider(
    line: LineUnderTest, provider: dict[str, Any], *sites: dict[str, Any]
) -> None:
    """Create a provider in Publish, then each of its sites."""
    publish = line["publish"]
    assert (await publish.post("/providers", json=provider, headers=API)).is_success
    for site in sites:
        path = f"/providers/{provider['code']}/sites"
        assert (await publish.post(path, json=site, headers=API)).is_success


async def publish_course(
    line: LineUnderTest, provider: dict[str, Any], course: dict[str, Any], *sites: dict[str, Any]
) -> str:
    """A provider and its sites in Publish, then one of its courses; returns its UUID."""
    await publish_provider(line, provider, *sites)
    path = f"/providers/{provider['code']}/courses"
    made = await line["publish"].post(path, json=course, headers=API)
    assert made.status_code == 201, made.text
    uuid: str = made.json()["uuid"]
    return uuid
