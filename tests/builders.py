"""Plain functions that build valid request bodies; override what a test cares about."""

from __future__ import annotations

from typing import Any

from stubs.gias.extract import render
from stubs.gias.models import School


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
