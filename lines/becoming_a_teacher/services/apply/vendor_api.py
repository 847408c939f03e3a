"""The Apply vendor API v1.0: how record systems (and Manage) read and decide applications."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Request, status
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.readers import APPLY_VENDOR_API
from lines.becoming_a_teacher.services.apply import reference_data
from lines.becoming_a_teacher.services.apply.models import (
    Application,
    ApplicationStatus,
    Candidate,
    Condition,
    CourseCopy,
    Event,
    ProviderCopy,
    StudyMode,
    TransitionError,
)
from lines.becoming_a_teacher.services.apply.settings import ApplySettings
from lines.becoming_a_teacher.topology import RECORD_SYSTEMS, record_system_for
from serviceline.model.credentials import CredentialError, Rule
from serviceline.runtime.deps import BearerDep, ClockDep, KernelDep, SessionDep, authorize

PREFIX = "/api/v1"

VendorStatus = Literal[
    "awaiting_provider_decision",
    "conditions_not_met",
    "declined",
    "offer",
    "offer_deferred",
    "pending_conditions",
    "recruited",
    "rejected",
    "withdrawn",
]
# v1.0 knows no interviews or withdrawn offers; states missing here are hidden from providers
VENDOR_STATUS: dict[ApplicationStatus, VendorStatus] = {
    "awaiting_provider_decision": "awaiting_provider_decision",
    "interviewing": "awaiting_provider_decision",
    "offer": "offer",
    "pending_conditions": "pending_conditions",
    "recruited": "recruited",
    "rejected": "rejected",
    "offer_withdrawn": "rejected",
    "withdrawn": "withdrawn",
    "declined": "declined",
    "conditions_not_met": "conditions_not_met",
    "offer_deferred": "offer_deferred",
}
UK_NATIONALITIES = {"GB": "UK Citizen", "IE": "Irish Citizen"}
NEEDS_PERMISSION = "Candidate needs to apply for permission to work and study in the UK"
# the real Apply's words for the deprecated regenerate, in the spec's OK shape
REGENERATE_REMOVED = (
    "Functionality for this endpoint has been removed. Please use /test-data/clear and "
    "/test-data/generate."
)

ApplicationIdPath = Annotated[str, Path(max_length=10)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=65535)]


class VendorError(Exception):
    """An error the vendor API answers in the spec's shape: {"errors": [{error, message}]}."""

    def __init__(self, status_code: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error = error
        self.message = message


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Attribution(Strict):
    full_name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    email: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class MetaData(Strict):
    attribution: Attribution
    timestamp: datetime


class VendorCourse(Strict):
    recruitment_cycle_year: int
    provider_code: str
    course_code: str
    site_code: str | None = None
    study_mode: StudyMode
    start_date: str | None = Field(default=None, exclude_if=lambda value: value is None)


class MakeOffer(Strict):
    conditions: list[Condition] = Field(max_length=20)
    course: VendorCourse | None = None


class OfferRequest(BaseModel):
    data: MakeOffer
    meta: MetaData


class RejectionData(Strict):
    reason: Text
    # v1.0 requires the date, yet the real Apply stamps a rejection with its own time, as here
    date: datetime


class RejectRequest(BaseModel):
    data: RejectionData
    meta: MetaData


class MetaRequest(BaseModel):
    meta: MetaData


class VendorCandidate(BaseModel):
    id: str
    first_name: str
    last_name: str
    date_of_birth: date
    nationality: list[str]
    domicile: str
    uk_residency_status: str
    fee_payer: Literal["02", "99"]
    english_main_language: bool
    english_language_qualifications: str | None = None
    other_languages: str | None = None
    disability_disclosure: str | None = None


class ContactDetails(BaseModel):
    address_line1: str
    postcode: str | None
    country: str
    email: str
    phone_number: str


# the register API's contact details are the vendor API's, under the register spec's own name
Contact = TypeVar("Contact", bound=ContactDetails)


class Offer(BaseModel):
    conditions: list[str]
    course: VendorCourse
    offer_made_at: datetime
    offer_accepted_at: datetime | None
    offer_declined_at: datetime | None


class Rejection(BaseModel):
    reason: str
    date: datetime


class Withdrawal(BaseModel):
    reason: str | None = None
    date: datetime


class Qualifications(BaseModel):
    gcses: list[dict[str, Any]] = []
    degrees: list[dict[str, Any]] = []
    other_qualifications: list[dict[str, Any]] = []
    missing_gcses_explanation: str | None = None


class WorkExperiences(BaseModel):
    jobs: list[dict[str, Any]] = []
    volunteering: list[dict[str, Any]] = []
    work_history_break_explanation: str | None = None


class ApplicationAttributes(BaseModel):
    application_url: str
    support_reference: str
    status: VendorStatus
    phase: Literal["apply_1", "apply_2"] = "apply_1"
    submitted_at: datetime
    updated_at: datetime
    reject_by_default_at: datetime | None = None
    recruited_at: datetime | None
    personal_statement: str
    interview_preferences: str = ""
    candidate: VendorCandidate
    contact_details: ContactDetails
    course: VendorCourse
    qualifications: Qualifications = Qualifications()
    work_experience: WorkExperiences = WorkExperiences()
    references: list[dict[str, Any]] = []
    offer: Offer | None
    withdrawal: Withdrawal | None
    rejection: Rejection | None
    further_information: str | None = None
    safeguarding_issues_status: Literal[
        "no_safeguarding_issues_to_declare", "has_safeguarding_issues_to_declare", "never_asked"
    ] = "never_asked"
    safeguarding_issues_details_url: str | None = None
    anonymised: bool = False


class ApplicationResource(BaseModel):
    id: str
    type: Literal["application"] = "application"
    attributes: ApplicationAttributes


class SingleApplicationResponse(BaseModel):
    data: ApplicationResource


class MultipleApplicationsResponse(BaseModel):
    data: list[ApplicationResource]


class ListResponse(BaseModel):
    data: list[str]


class Message(BaseModel):
    message: str


class OkResponse(BaseModel):
    data: Message


def vendor_settings(kernel: KernelDep) -> ApplySettings:
    settings = kernel.settings
    assert isinstance(settings, ApplySettings)  # create_app is only ever given ApplySettings
    return settings


SettingsDep = Annotated[ApplySettings, Depends(vendor_settings)]


VENDOR_API = Rule(
    "Apply's vendor API",
    operator=False,
    commands=True,
    reads=("application", APPLY_VENDOR_API),
)


def require_vendor(kernel: KernelDep, request: Request, bearer: BearerDep) -> str:
    """The vendor whose token this is: Manage or a record system, or the auditor on reads."""
    try:
        return authorize(kernel, request, bearer, VENDOR_API).name
    except CredentialError as error:
        title = "Unauthorized" if error.status_code == 401 else "Forbidden"
        raise VendorError(error.status_code, title, str(error.detail)) from error


VendorDep = Annotated[str, Depends(require_vendor)]
router = APIRouter(prefix=PREFIX, tags=["vendor API v1"], dependencies=[Depends(require_vendor)])


def providers_shown(session: Session, vendor: str) -> set[str] | None:
    """The providers whose applications a vendor sees: None for all (Manage sees every one).

    A record system sees the universities that run it, as Apply's own copy of Publish's
    providers says which providers are universities.
    """
    if vendor not in RECORD_SYSTEMS:
        return None
    universities = session.exec(
        select(ProviderCopy.code).where(ProviderCopy.provider_type == "university")
    )
    return {code for code in universities if record_system_for(code) == vendor}


def course_of(application: Application, course: CourseCopy | None) -> VendorCourse:
    return VendorCourse(
        recruitment_cycle_year=application.recruitment_cycle_year,
        provider_code=application.provider_code,
        course_code=application.course_code,
        site_code=application.site_code,
        study_mode=application.study_mode,
        # the course copy may be gone (a full sync after a hard delete); the choice lives on
        start_date=course.start_date.strftime("%Y-%m") if course and course.start_date else None,
    )


def contact_details_of(candidate: Candidate, model: type[Contact]) -> Contact:
    return model(
        address_line1=candidate.address_line1,
        postcode=candidate.postcode,
        country=candidate.country,
        email=candidate.email,
        phone_number=candidate.phone_number,
    )


def candidate_of(application: Application, candidate: Candidate) -> VendorCandidate:
    residency = next(
        (UK_NATIONALITIES[n] for n in application.nationality if n in UK_NATIONALITIES),
        NEEDS_PERMISSION,
    )
    domicile = "XF" if candidate.country == "GB" else candidate.country
    return VendorCandidate(
        id=candidate.id,
        first_name=application.first_name,
        last_name=application.last_name,
        date_of_birth=application.date_of_birth,
        nationality=application.nationality,
        domicile=domicile,
        uk_residency_status=residency,
        fee_payer="02" if residency != NEEDS_PERMISSION and domicile == "XF" else "99",
        # this model's application form asks nothing about languages; the spec needs a value
        english_main_language=True,
    )


def resource(
    application: Application,
    candidate: Candidate,
    course: CourseCopy | None,
    settings: ApplySettings,
) -> ApplicationResource:
    """One application in the vendor API's shape, its status mapped to the v1.0 enum."""
    offered = course_of(application, course)
    offer = None
    if application.offer_made_at is not None:
        offer = Offer(
            conditions=application.offer_conditions,
            course=offered,
            offer_made_at=application.offer_made_at,
            offer_accepted_at=application.offer_accepted_at,
            offer_declined_at=application.offer_declined_at,
        )
    rejection = None
    if application.rejected_at is not None and application.rejection_reason is not None:
        rejection = Rejection(reason=application.rejection_reason, date=application.rejected_at)
    withdrawal = None
    if application.status == "withdrawn" and application.withdrawn_at is not None:
        withdrawal = Withdrawal(date=application.withdrawn_at)
    # submission stamps submitted_at and every flush stamps updated_at
    assert application.submitted_at is not None
    assert application.updated_at is not None
    attributes = ApplicationAttributes(
        application_url=f"{settings.manage_url()}/applications/{application.id}",
        support_reference=candidate.id,  # here a candidate has one application form
        status=VENDOR_STATUS[application.status],
        submitted_at=application.submitted_at,
        updated_at=application.updated_at,
        recruited_at=application.recruited_at,
        personal_statement=application.personal_statement,
        candidate=candidate_of(application, candidate),
        contact_details=contact_details_of(candidate, ContactDetails),
        course=offered,
        offer=offer,
        withdrawal=withdrawal,
        rejection=rejection,
    )
    return ApplicationResource(id=application.id, attributes=attributes)


def parse_since(since: str | None) -> datetime:
    """`since` as the real Apply reads it: required, ISO 8601, UTC unless it names a zone."""
    if not since:
        raise VendorError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "ParameterMissing",
            "param is missing or the value is empty: since",
        )
    try:
        moment = datetime.fromisoformat(since)
    except ValueError as error:
        raise VendorError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "ParameterInvalid",
            "Parameter is invalid (should be ISO8601, e.g. 2026-10-05T12:00:00Z): since",
        ) from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def visible(session: Session, application_id: str, vendor: str) -> Application:
    application = session.get(Application, application_id)
    shown = providers_shown(session, vendor)
    if (
        application is None
        or application.status not in VENDOR_STATUS
        or (shown is not None and application.provider_code not in shown)
    ):
        raise VendorError(
            status.HTTP_404_NOT_FOUND, "NotFound", f"Unable to find Application {application_id}"
        )
    return application


def answer(
    session: Session, application: Application, settings: ApplySettings
) -> SingleApplicationResponse:
    candidate = session.get(Candidate, application.candidate_id)
    assert candidate is not None  # the foreign key holds it
    course = session.get(CourseCopy, application.course_uuid)
    return SingleApplicationResponse(data=resource(application, candidate, course, settings))


def decide(
    session: Session,
    settings: ApplySettings,
    application: Application,
    event: Event,
    now: datetime,
    **changes: Any,
) -> SingleApplicationResponse:
    """Take the decision if the application's status allows it, and answer with the result."""
    try:
        application.move(event, now)
    except TransitionError as error:
        raise VendorError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "UnprocessableEntity", str(error)
        ) from error
    application.sqlmodel_update(changes)
    session.add(application)
    session.flush()
    return answer(session, application, settings)


def check_offered_course(application: Application, proposed: VendorCourse | None) -> None:
    # start_date in a POST has no effect: the other fields identify the course
    if proposed is not None and proposed.model_copy(update={"start_date": None}) != course_of(
        application, None
    ):
        raise VendorError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "UnprocessableEntity",
            "data.course: this Apply only offers the course the candidate applied to",
        )


@router.get("/applications")
def list_applications(
    session: SessionDep, settings: SettingsDep, vendor: VendorDep, since: str | None = None
) -> MultipleApplicationsResponse:
    """Applications changed on or since `since`, most recently updated first."""
    moment = parse_since(since)
    query = (
        select(Application, Candidate, CourseCopy)
        .join(Candidate, col(Candidate.id) == col(Application.candidate_id))
        .join(CourseCopy, col(CourseCopy.uuid) == col(Application.course_uuid), isouter=True)
        .where(col(Application.updated_at) >= moment, col(Application.status).in_(VENDOR_STATUS))
        .order_by(col(Application.updated_at).desc(), col(Application.id))
    )
    shown = providers_shown(session, vendor)
    if shown is not None:
        query = query.where(col(Application.provider_code).in_(shown))
    rows = session.exec(query)
    return MultipleApplicationsResponse(data=[resource(*row, settings) for row in rows])


@router.get("/applications/{application_id}")
def read_application(
    application_id: ApplicationIdPath,
    session: SessionDep,
    settings: SettingsDep,
    vendor: VendorDep,
) -> SingleApplicationResponse:
    return answer(session, visible(session, application_id, vendor), settings)


@router.post("/applications/{application_id}/offer")
def create_offer(
    application_id: ApplicationIdPath,
    body: OfferRequest,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    vendor: VendorDep,
) -> SingleApplicationResponse:
    application = visible(session, application_id, vendor)
    check_offered_course(application, body.data.course)
    conditions = list(body.data.conditions)
    return decide(
        session, settings, application, "make_offer", clock.now(), offer_conditions=conditions
    )


@router.post("/applications/{application_id}/reject")
def create_rejection(
    application_id: ApplicationIdPath,
    body: RejectRequest,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    vendor: VendorDep,
) -> SingleApplicationResponse:
    """Rejects an application, or withdraws an offer not yet accepted."""
    application = visible(session, application_id, vendor)
    reason = body.data.reason
    return decide(session, settings, application, "reject", clock.now(), rejection_reason=reason)


@router.post("/applications/{application_id}/confirm-conditions-met")
def create_conditions_met(
    application_id: ApplicationIdPath,
    body: MetaRequest,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    vendor: VendorDep,
) -> SingleApplicationResponse:
    application = visible(session, application_id, vendor)
    return decide(session, settings, application, "confirm_conditions_met", clock.now())


@router.post("/applications/{application_id}/conditions-not-met")
def create_conditions_not_met(
    application_id: ApplicationIdPath,
    body: MetaRequest,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    vendor: VendorDep,
) -> SingleApplicationResponse:
    application = visible(session, application_id, vendor)
    return decide(session, settings, application, "conditions_not_met", clock.now())


@router.post("/applications/{application_id}/confirm-enrolment", deprecated=True)
def update_enrolment(
    application_id: ApplicationIdPath,
    body: MetaRequest,
    session: SessionDep,
    settings: SettingsDep,
    vendor: VendorDep,
) -> SingleApplicationResponse:
    """Answers the application unchanged: Apply has no enrolment, as v1.0 says."""
    return answer(session, visible(session, application_id, vendor), settings)


@router.get("/reference-data/gcse-subjects")
def list_gcse_subjects() -> ListResponse:
    return ListResponse(data=list(reference_data.GCSE_SUBJECTS))


@router.get("/reference-data/gcse-grades")
def list_gcse_grades() -> ListResponse:
    return ListResponse(data=list(reference_data.GCSE_GRADES))


@router.get("/reference-data/a-and-as-level-subjects")
def list_a_and_as_level_subjects() -> ListResponse:
    return ListResponse(data=list(reference_data.A_AND_AS_LEVEL_SUBJECTS))


@router.get("/reference-data/a-and-as-level-grades")
def list_a_and_as_level_grades() -> ListResponse:
    return ListResponse(data=list(reference_data.A_AND_AS_LEVEL_GRADES))


@router.post("/test-data/regenerate", deprecated=True)
def create_test_data() -> OkResponse:
    """Generates nothing: v1.0 deprecates it; the line's applications come from its workload."""
    return OkResponse(data=Message(message=REGENERATE_REMOVED))


def _field(error: Mapping[str, Any]) -> str:
    """The field a validation error is about: `meta.attribution.email`, or `body` itself."""
    if error["type"] == "json_invalid":
        return "body"
    return ".".join(str(part) for part in error["loc"][1:]) or "body"


def add_error_handlers(app: FastAPI) -> None:
    """Vendor API errors in the spec's shape; the rest of Apply keeps FastAPI's."""

    @app.exception_handler(VendorError)
    async def vendor_error(_request: Request, error: VendorError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
        return JSONResponse(
            {"errors": [{"error": error.error, "message": error.message}]},
            status_code=error.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith(f"{PREFIX}/"):
            return await request_validation_exception_handler(request, error)
        errors = [
            {"error": "UnprocessableEntity", "message": f"{_field(e)}: {e['msg']}"}
            for e in error.errors()
        ]
        return JSONResponse({"errors": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
