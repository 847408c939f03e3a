"""Apply's register API: the recruited applications Register reads, shaped as its 2021 spec."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel
from sqlmodel import col, func, select

from lines.becoming_a_teacher.readers import APPLY_REGISTER_API
from lines.becoming_a_teacher.services.apply.models import Application, Candidate
from lines.becoming_a_teacher.services.apply.vendor_api import (
    NEEDS_PERMISSION,
    ContactDetails,
    SettingsDep,
    VendorError,
    candidate_of,
    contact_details_of,
)
from serviceline.model.credentials import CredentialError, Rule
from serviceline.model.fields import most_pages
from serviceline.runtime.deps import BearerDep, KernelDep, SessionDep, authorize

PREFIX = "/register-api"
# an application that was recruited, as it stands now: still recruited, withdrawn or deferred
RegisterStatus = Literal["recruited", "withdrawn", "offer_deferred"]
RECRUITED: tuple[RegisterStatus, ...] = ("recruited", "withdrawn", "offer_deferred")
RESIDENCY_CODES = {"UK Citizen": "A", "Irish Citizen": "B", NEEDS_PERMISSION: "C"}


class RegisterCandidate(BaseModel):
    id: str
    first_name: str
    last_name: str
    date_of_birth: date
    nationality: list[str]
    domicile: str
    uk_residency_status: str
    uk_residency_status_code: Literal["A", "B", "C", "D"]
    fee_payer: Literal["02", "99"]
    english_main_language: bool
    english_language_qualifications: str | None = None
    other_languages: str | None = None
    disability_disclosure: str | None = None
    disabilities: list[str] = []
    # this model's application form asks no equality questions
    gender: None = None
    ethnic_group: None = None
    ethnic_background: None = None


class RegisterContactDetails(ContactDetails):
    pass


class RegisterCourse(BaseModel):
    recruitment_cycle_year: int
    training_provider_code: str
    course_code: str
    site_code: str
    study_mode: Literal["full_time", "part_time"]


class RegisterQualifications(BaseModel):
    gcses: list[dict[str, str]] = []
    degrees: list[dict[str, str]] = []
    other_qualifications: list[dict[str, str]] = []
    missing_gcses_explanation: str | None = None


class RegisterAttributes(BaseModel):
    support_reference: str
    status: RegisterStatus
    updated_at: datetime
    submitted_at: datetime
    recruited_at: datetime | None
    candidate: RegisterCandidate
    contact_details: RegisterContactDetails
    course: RegisterCourse
    qualifications: RegisterQualifications = RegisterQualifications()


class RegisterApplication(BaseModel):
    id: str
    type: Literal["application"] = "application"
    attributes: RegisterAttributes


class MultipleApplicationsResponse(BaseModel):
    data: list[RegisterApplication]


REGISTER_API = Rule(
    "Apply's register API", operator=False, reads=("application", APPLY_REGISTER_API)
)


def require_register(kernel: KernelDep, request: Request, bearer: BearerDep) -> None:
    """Register's token, or the auditor's; the spec's shape for a refusal."""
    try:
        authorize(kernel, request, bearer, REGISTER_API)
    except CredentialError as error:
        title = "Unauthorized" if error.status_code == 401 else "Forbidden"
        raise VendorError(error.status_code, title, str(error.detail)) from error


router = APIRouter(prefix=PREFIX, tags=["register API"], dependencies=[Depends(require_register)])


def recruit(application: Application, candidate: Candidate) -> RegisterApplication:
    vendor = candidate_of(application, candidate)
    assert application.submitted_at is not None  # submission stamps it
    assert application.updated_at is not None  # every flush stamps it
    status = application.status
    assert status in RECRUITED  # only these are listed
    return RegisterApplication(
        id=application.id,
        attributes=RegisterAttributes(
            support_reference=candidate.id,
            status=status,
            updated_at=application.updated_at,
            submitted_at=application.submitted_at,
            recruited_at=application.recruited_at,
            candidate=RegisterCandidate(
                **vendor.model_dump(),
                uk_residency_status_code=RESIDENCY_CODES[vendor.uk_residency_status],
            ),
            contact_details=contact_details_of(candidate, RegisterContactDetails),
            course=RegisterCourse(
                recruitment_cycle_year=application.recruitment_cycle_year,
                training_provider_code=application.provider_code,
                course_code=application.course_code,
                site_code=application.site_code,
                study_mode=application.study_mode,
            ),
        ),
    )


def cycle_year(value: str | None, current: int) -> int:
    """A year visible to providers, as the real API takes it: this cycle or the last."""
    if not value:
        raise VendorError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "ParameterMissing",
            "param is missing or the value is empty: recruitment_cycle_year",
        )
    if value not in {str(current), str(current - 1)}:
        raise invalid_parameter("recruitment_cycle_year")
    return int(value)


def parse_changed_since(value: str | None) -> datetime | None:
    # the real API lists everything for a blank value, as a first import sends
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise invalid_parameter("changed_since", "(should be ISO8601)") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def page_number(value: str | None, size: int) -> int:
    if value is None:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= most_pages(size):
        raise invalid_parameter("page")
    return int(value)


def invalid_parameter(name: str, why: str = "") -> VendorError:
    message = f"Parameter is invalid {why}: {name}" if why else f"Parameter is invalid: {name}"
    return VendorError(status.HTTP_422_UNPROCESSABLE_CONTENT, "ParameterInvalid", message)


@router.get("/applications")
def list_applications(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    recruitment_cycle_year: str | None = None,
    changed_since: str | None = None,
    page: str | None = None,
) -> MultipleApplicationsResponse:
    """A cycle's recruited applications changed on or since a time, oldest change first."""
    # the parameters are read by hand, so a bad one is refused in the spec's shape
    conditions: list[Any] = [
        Application.recruitment_cycle_year
        == cycle_year(recruitment_cycle_year, settings.recruitment_cycle_year),
        col(Application.status).in_(RECRUITED),
        col(Application.recruited_at).is_not(None),
    ]
    since = parse_changed_since(changed_since)
    if since is not None:
        conditions.append(col(Application.updated_at) >= since)
    size = settings.page_size
    number = page_number(page, size)
    total = session.exec(select(func.count()).select_from(Application).where(*conditions)).one()
    rows = session.exec(
        select(Application, Candidate)
        .join(Candidate, col(Candidate.id) == col(Application.candidate_id))
        .where(*conditions)
        .order_by(col(Application.updated_at), col(Application.id))
        .offset((number - 1) * size)
        .limit(size)
    )
    response.headers["Total-Pages"] = str(max(1, -(-total // size)))
    return MultipleApplicationsResponse(data=[recruit(*row) for row in rows])
