"""The Register API v2026.1: how student record systems push their trainees into Register."""

# Requests carry HESA codes, which Register turns into its own values (codes.py) and answers
# with again; every answer and refusal takes the shape the spec gives that endpoint.

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, status
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlmodel import Session, col, func, select

from lines.becoming_a_teacher.services.register.codes import (
    AGE_RANGE_CODES,
    COURSE_AGE_RANGES,
    COURSE_SUBJECTS,
    EARLY_YEARS_ROUTES,
    FUND_CODES,
    FUNDING_METHODS,
    ITT_AIMS,
    ITT_QUALIFICATION_AIMS,
    ROUTE_CODES,
    SEX_CODES,
    SEXES,
    STUDY_MODE_CODES,
    STUDY_MODES,
    SUBJECT_CODES,
    TRAINING_ROUTES,
    UNDERGRADUATE_ROUTES,
)
from lines.becoming_a_teacher.services.register.models import (
    Trainee,
    TraineeEvent,
    TraineeState,
    TransitionError,
)
from lines.becoming_a_teacher.services.register.trn import (
    FINAL_STATES,
    UnknownTrnError,
    change,
    report_status,
    standards_met,
    submit_for_trn,
)
from lines.becoming_a_teacher.topology import RECORD_SYSTEMS, record_system_for
from serviceline.model.credentials import CredentialError, Principal, Rule
from serviceline.model.fields import most_pages
from serviceline.runtime.deps import (
    BearerDep,
    ClockDep,
    KernelDep,
    SessionDep,
    UpstreamsDep,
    authorize,
)

VERSION = "v2026.1"
PREFIX = f"/api/{VERSION}"
PER_PAGE = 50
MAX_PER_PAGE = 100
WITHDRAWAL_TRIGGERS = ("provider", "trainee")
FUTURE_INTERESTS = ("yes", "no", "unknown")
Payload = Annotated[dict[str, Any], Body()]
NOT_PROVIDED = "not_provided_ethnic_group"
# HESA's ethnicity codes: 997 not known, 998 information refused, 999 not available
NOT_GIVEN_ETHNICITIES = frozenset({"997", "998", "999"})
ETHNIC_BANDS = (
    (119, "white_ethnic_group"),
    (139, "mixed_ethnic_group"),
    (159, "asian_ethnic_group"),
    (179, "black_ethnic_group"),
)


class RegisterApiError(Exception):
    """A refusal, answered in the shape the spec gives the endpoint."""

    def __init__(self, status_code: int, content: dict[str, Any]) -> None:
        super().__init__(str(content))
        self.status_code = status_code
        self.content = content


def not_found() -> RegisterApiError:
    content = {"errors": [{"error": "NotFound", "message": "Trainee(s) not found"}]}
    return RegisterApiError(status.HTTP_404_NOT_FOUND, content)


def _failed(count: int, what: str) -> str:
    errors = "error" if count == 1 else "errors"
    return f"Validation failed: {count} {errors} prohibited this {what}"


def rejected(messages: list[str]) -> RegisterApiError:
    """POST /trainees: each message names its field."""
    content = {
        "message": _failed(len(messages), "trainee from being saved"),
        "errors": messages,
    }
    return RegisterApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, content)


def invalid(
    errors: dict[str, list[str]], what: str = "trainee from being saved"
) -> RegisterApiError:
    """PUT /trainees/{id} and GET /trainees: messages by field."""
    content = {"message": _failed(len(errors), what), "errors": errors}
    return RegisterApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, content)


def unprocessable(message: str, error: str = "UnprocessableEntity") -> RegisterApiError:
    """Defer, withdraw and recommend-for-qts."""
    content = {"errors": [{"error": error, "message": message}]}
    return RegisterApiError(status.HTTP_422_UNPROCESSABLE_CONTENT, content)


REGISTER_API = Rule("the Register API", commands=True)


def require_client(kernel: KernelDep, request: Request, bearer: BearerDep) -> Principal:
    """A student record system's token (or the operator's, or the auditor's on reads)."""
    try:
        return authorize(kernel, request, bearer, REGISTER_API)
    except CredentialError as error:
        title = "Unauthorized" if error.status_code == 401 else "Forbidden"
        raise RegisterApiError(error.status_code, {"error": title}) from error


ClientDep = Annotated[Principal, Depends(require_client)]


def system_of(client: Principal) -> str | None:
    """The record system a client is, whose own providers' trainees alone it sees; else None."""
    return client.name if client.name in RECORD_SYSTEMS else None


def serves(client: Principal, provider_code: str | None) -> bool:
    """Whether the client may see and change a trainee of this provider.

    A record system serves the providers that run it, as Apply's vendor API knows them
    (topology.record_system_for); the operator and the auditor serve every provider.
    """
    system = system_of(client)
    return system is None or (
        provider_code is not None and record_system_for(provider_code) == system
    )


def provider_refused(client: Principal, values: Mapping[str, Any]) -> str | None:
    """Why a record system may not give a trainee this provider, or None if it may."""
    code = values.get("provider_code")
    if serves(client, code):
        return None
    return "can't be blank" if code is None else f"{code} is not a provider {client.name} serves"


router = APIRouter(prefix=PREFIX, tags=["Register API"], dependencies=[Depends(require_client)])


@dataclass(frozen=True)
class ApiField:
    """One request field: the trainee fields it sets, and how its value becomes theirs."""

    targets: tuple[str, ...]
    parse: Callable[[str], tuple[Any, ...]]


def text(target: str, pattern: str = r".{1,255}", what: str = "at most 255 characters") -> ApiField:
    def parse(value: str) -> tuple[Any, ...]:
        if re.fullmatch(pattern, value) is None:
            raise ValueError(f"must be {what}")
        return (value,)

    return ApiField((target,), parse)


def day(target: str) -> ApiField:
    def parse(value: str) -> tuple[Any, ...]:
        try:
            return (date.fromisoformat(value),)
        except ValueError as error:
            raise ValueError(f"{value} is not a valid date") from error

    return ApiField((target,), parse)


def coded(codes: Mapping[str, Any] | Collection[str], *targets: str) -> ApiField:
    """A HESA code from one of Register's reference data lists, as the value(s) it stands for."""
    values = codes if isinstance(codes, Mapping) else {code: code for code in codes}

    def parse(value: str) -> tuple[Any, ...]:
        if value not in values:
            raise ValueError(f"has invalid reference data value of '{value}'")
        found = values[value]
        return tuple(found) if len(targets) > 1 else (found,)

    return ApiField(targets, parse)


def year(target: str) -> ApiField:
    def parse(value: str) -> tuple[Any, ...]:
        if re.fullmatch(r"\d{4}", value) is None:
            raise ValueError(f"{value} is not a valid year")
        return (int(value),)

    return ApiField((target,), parse)


FIELDS: Mapping[str, ApiField] = {
    "first_names": text("first_names", r".{1,60}", "1 to 60 characters"),
    "middle_names": text("middle_names", r".{1,60}", "1 to 60 characters"),
    "last_name": text("last_name", r".{1,60}", "1 to 60 characters"),
    "previous_last_name": text("previous_last_name", r".{1,60}", "1 to 60 characters"),
    "date_of_birth": day("date_of_birth"),
    "sex": coded(SEXES, "sex"),
    "email": text("email", r"[^@\s]{1,64}@[^@\s]{1,64}", "an email address"),
    "nationality": text("nationality", r"[A-Z]{2}", "a two-letter country code"),
    "ni_number": text(
        "ni_number", r"[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]", "a National Insurance number"
    ),
    "trn": text("trn", r"\d{7}", "7 digits"),
    "training_route": coded(TRAINING_ROUTES, "training_route"),
    "itt_start_date": day("itt_start_date"),
    "itt_end_date": day("itt_end_date"),
    "trainee_start_date": day("trainee_start_date"),
    "pg_apprenticeship_start_date": day("pg_apprenticeship_start_date"),
    "course_subject_1": coded(COURSE_SUBJECTS, "course_subject_one"),
    "course_subject_2": coded(COURSE_SUBJECTS, "course_subject_two"),
    "course_subject_3": coded(COURSE_SUBJECTS, "course_subject_three"),
    "study_mode": coded(STUDY_MODES, "study_mode"),
    "course_age_range": coded(COURSE_AGE_RANGES, "course_min_age", "course_max_age"),
    "itt_aim": coded(ITT_AIMS, "itt_aim"),
    "itt_qualification_aim": coded(ITT_QUALIFICATION_AIMS, "itt_qualification_aim"),
    "fund_code": coded(FUND_CODES, "fund_code"),
    "funding_method": coded(FUNDING_METHODS, "funding_method"),
    "course_year": year("course_year"),
    "hesa_id": text("hesa_id", r"\d{13}", "13 digits"),
    "provider_trainee_id": text("provider_trainee_id"),
    # the real API takes the provider from its token; here a record system's token is shared by
    # the universities that run it, so each trainee names its provider
    "provider_code": text("provider_code", r"[A-Z0-9]{3}", "a 3-character provider code"),
    "ukprn": text("ukprn", r"\d{8}", "8 digits"),
    "training_partner_ukprn": text("training_partner_ukprn", r"\d{8}", "8 digits"),
    "employing_school_urn": text("employing_school_urn", r"\d{6}", "6 digits"),
    "training_partner_urn": text("training_partner_urn", r"\d{6}", "6 digits"),
    "ethnicity": text("ethnicity", r"\d{3}", "a 3-digit HESA code"),
    "additional_training_initiative": text("additional_training_initiative", r"\d{3}", "3 digits"),
}
REQUIRED = (
    "first_names",
    "last_name",
    "date_of_birth",
    "sex",
    "email",
    "nationality",
    "training_route",
    "itt_start_date",
    "itt_end_date",
    "itt_aim",
    "itt_qualification_aim",
    "course_year",
    "course_age_range",
    "fund_code",
    "funding_method",
    "hesa_id",
)
# a TRN comes from DQT, and only with the trainee it was asked for
NOT_UPDATABLE = frozenset({"trn"})
# what the real API takes beside the trainee's own fields: this Register checks their shape and
# keeps none of them
NESTED = {
    "degrees_attributes": "a list of degrees",
    "placements_attributes": "a list of placements",
}
APPLICATION_ID = re.compile(r"[0-9a-f]{10}")
URN = re.compile(r"\d{6}")


def check_nested(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """What is wrong with the parts of a request this Register does not keep, by field."""
    errors: dict[str, list[str]] = {}
    for name, what in NESTED.items():
        items = data.get(name)
        if items is None:
            continue
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            errors[name] = [f"must be {what}, each an object"]
        elif name == "placements_attributes" and not all(
            item.get("urn") is None or (isinstance(item["urn"], str) and URN.fullmatch(item["urn"]))
            for item in items
        ):
            errors[name] = ["urn must be 6 digits"]
    application = data.get("application_id")
    if application is not None and not (
        isinstance(application, str) and APPLICATION_ID.fullmatch(application)
    ):
        errors["application_id"] = ["must be the id of an application in Apply"]
    return errors


def convert(
    data: Mapping[str, Any], fields: Collection[str]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The trainee's fields from the request's HESA-coded ones, or what is wrong, by field."""
    values: dict[str, Any] = {}
    errors = check_nested(data)
    for name, value in data.items():
        spec = FIELDS.get(name)
        if spec is None or name not in fields:
            continue  # as the real API, fields it does not take are dropped
        # HESA codes and dates come as text; only a course year may come as a number
        is_year = name == "course_year" and type(value) is int
        if value is not None and not isinstance(value, str) and not is_year:
            errors[name] = ["must be a string"]
            continue
        if value is None or value == "":
            if name in REQUIRED:
                errors[name] = ["can't be blank"]
            else:
                values.update(dict.fromkeys(spec.targets))
            continue
        try:
            values.update(zip(spec.targets, spec.parse(str(value).strip()), strict=True))
        except ValueError as error:
            errors[name] = [str(error)]
    return values, errors


def payload(body: Mapping[str, Any]) -> dict[str, Any] | None:
    data = body.get("data")
    return data if isinstance(data, dict) else None


def _iso(moment: date | datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def education_phase(trainee: Trainee) -> str | None:
    if trainee.training_route in EARLY_YEARS_ROUTES:
        return "early_years"
    if trainee.course_max_age is None:
        return None
    return "primary" if trainee.course_max_age <= 11 else "secondary"


def ethnic_group(ethnicity: str | None) -> str:
    """Register's ethnic group for a HESA ethnicity code, by the bands HESA groups them in."""
    if ethnicity is None or ethnicity in NOT_GIVEN_ETHNICITIES:
        return NOT_PROVIDED
    code = int(ethnicity)
    return next((group for top, group in ETHNIC_BANDS if code <= top), "other_ethnic_group")


def serialize(trainee: Trainee) -> dict[str, Any]:
    """A trainee as the Register API shows it: HESA codes for the values Register maps."""
    route = trainee.training_route
    youngest, oldest = trainee.course_min_age, trainee.course_max_age
    age_range = None
    if youngest is not None and oldest is not None:
        age_range = AGE_RANGE_CODES.get((youngest, oldest))
    group = ethnic_group(trainee.ethnicity)
    disclosed = group != NOT_PROVIDED
    withdrawn = trainee.state == "withdrawn"
    return {
        "first_names": trainee.first_names,
        "last_name": trainee.last_name,
        "date_of_birth": _iso(trainee.date_of_birth),
        "created_at": _iso(trainee.created_at),
        "updated_at": _iso(trainee.updated_at),
        "email": trainee.email,
        "middle_names": trainee.middle_names,
        "training_route": ROUTE_CODES.get(route) if route else None,
        "sex": SEX_CODES.get(trainee.sex) if trainee.sex else None,
        "diversity_disclosure": "diversity_disclosed" if disclosed else "diversity_not_disclosed",
        "ethnic_group": group,
        # the background within a group is not modelled: only "not provided" is told
        "ethnic_background": None if disclosed else "Not provided",
        "additional_ethnic_background": None,
        "disability_disclosure": "disability_not_provided",
        "itt_start_date": _iso(trainee.itt_start_date),
        "outcome_date": _iso(trainee.outcome_date),
        "itt_end_date": _iso(trainee.itt_end_date),
        "trn": trainee.trn,
        "submitted_for_trn_at": _iso(trainee.submitted_for_trn_at),
        "defer_date": _iso(trainee.defer_date),
        "recommended_for_award_at": _iso(trainee.recommended_for_award_at),
        "trainee_start_date": _iso(trainee.trainee_start_date),
        "reinstate_date": _iso(trainee.reinstate_date),
        "course_min_age": trainee.course_min_age,
        "course_max_age": trainee.course_max_age,
        "awarded_at": _iso(trainee.awarded_at),
        "training_initiative": None,
        "study_mode": STUDY_MODE_CODES.get(trainee.study_mode) if trainee.study_mode else None,
        "course_education_phase": education_phase(trainee),
        "hesa_id": trainee.hesa_id,
        "record_source": trainee.record_source,
        "iqts_country": None,
        "provider_trainee_id": trainee.provider_trainee_id,
        "defer_reason": trainee.defer_reason,
        "ukprn": trainee.ukprn,
        "ethnicity": trainee.ethnicity,
        "course_qualification": "EYTS" if route in EARLY_YEARS_ROUTES else "QTS",
        "course_title": None,
        "course_level": "undergrad" if route in UNDERGRADUATE_ROUTES else "postgrad",
        "course_itt_start_date": _iso(trainee.itt_start_date),
        "course_age_range": age_range,
        "employing_school_urn": trainee.employing_school_urn,
        "training_partner_ukprn": trainee.training_partner_ukprn,
        "training_partner_urn": trainee.training_partner_urn,
        "previous_last_name": trainee.previous_last_name,
        "itt_aim": trainee.itt_aim,
        "course_year": trainee.course_year,
        "pg_apprenticeship_start_date": _iso(trainee.pg_apprenticeship_start_date),
        "funding_method": trainee.funding_method,
        "ni_number": trainee.ni_number,
        "additional_training_initiative": trainee.additional_training_initiative,
        "itt_qualification_aim": trainee.itt_qualification_aim,
        "fund_code": trainee.fund_code,
        "course_subject_1": SUBJECT_CODES.get(trainee.course_subject_one or ""),
        "course_subject_2": SUBJECT_CODES.get(trainee.course_subject_two or ""),
        "course_subject_3": SUBJECT_CODES.get(trainee.course_subject_three or ""),
        "nationality": trainee.nationality,
        "withdrawal_date": _iso(trainee.withdrawal_date),
        "withdrawal_reasons": trainee.withdrawal_reasons if withdrawn else None,
        "withdrawal_trigger": trainee.withdrawal_trigger,
        "withdrawal_future_interest": trainee.withdrawal_future_interest,
        "withdrawal_another_reason": trainee.withdrawal_another_reason,
        "withdrawal_safeguarding_concern_reasons": trainee.withdrawal_safeguarding_concern_reasons,
        "placements": [],
        "degrees": [],
        "state": trainee.state,
        "trainee_id": trainee.slug,
        "application_id": trainee.apply_id,
    }


def get_trainee(session: Session, trainee_id: str, client: Principal) -> Trainee:
    """The trainee, if the client may see it: a record system only its own providers'."""
    trainee = session.get(Trainee, trainee_id)
    if trainee is None or not serves(client, trainee.provider_code):
        raise not_found()
    return trainee


@router.get("/info")
def read_info() -> dict[str, Any]:
    return {"status": "ok", "version": {"requested": VERSION, "latest": VERSION}}


def _page_number(value: str | None, default: int, name: str, errors: dict[str, list[str]]) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= most_pages(MAX_PER_PAGE):
        errors[name] = [f"{value} is not a valid {name}"]
        return default
    return int(value)


@router.get("/trainees")
def list_trainees(
    session: SessionDep,
    client: ClientDep,
    state: Annotated[str | None, Query(alias="status")] = None,
    since: str | None = None,
    has_trn: str | None = None,
    sort_order: str | None = None,
    page: str | None = None,
    per_page: str | None = None,
) -> dict[str, Any]:
    """Trainees, most recently updated first unless `sort_order=asc`, a page at a time."""
    errors: dict[str, list[str]] = {}
    conditions: list[Any] = []
    if state is not None:
        if state in get_args(TraineeState):
            conditions.append(Trainee.state == state)
        else:
            errors["status"] = [f"{state} is not a valid status"]
    if since is not None:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            errors["since"] = [f"{since} is not a valid date"]
        else:
            # a time without an offset is UTC, as every time in the line
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
            conditions.append(col(Trainee.updated_at) >= moment)
    if system_of(client) is not None:
        providers = session.exec(select(Trainee.provider_code).distinct()).all()
        served = [code for code in providers if serves(client, code)]
        conditions.append(col(Trainee.provider_code).in_(served))
    if has_trn == "true":
        conditions.append(col(Trainee.trn).is_not(None))
    elif has_trn == "false":
        conditions.append(col(Trainee.trn).is_(None))
    elif has_trn is not None:
        errors["has_trn"] = [f"{has_trn} is not true or false"]
    if sort_order not in (None, "asc", "desc"):
        errors["sort_order"] = [f"{sort_order} is not asc or desc"]
    number = _page_number(page, 1, "page", errors)
    size = min(_page_number(per_page, PER_PAGE, "per_page", errors), MAX_PER_PAGE)
    if errors:
        raise invalid(errors, "request being run")
    total = session.exec(select(func.count()).select_from(Trainee).where(*conditions)).one()
    if total == 0:
        content = {"errors": [{"error": "NotFound", "message": "No trainees found"}]}
        raise RegisterApiError(status.HTTP_404_NOT_FOUND, content)
    updated = col(Trainee.updated_at)
    order = [updated.asc() if sort_order == "asc" else updated.desc(), col(Trainee.slug)]
    rows = session.exec(
        select(Trainee).where(*conditions).order_by(*order).offset((number - 1) * size).limit(size)
    )
    return {
        "data": [serialize(trainee) for trainee in rows],
        "meta": {
            "current_page": number,
            "total_pages": -(-total // size),
            "total_count": total,
            "per_page": size,
        },
    }


@router.post("/trainees", status_code=201)
def create_trainee(
    body: Payload, session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep, client: ClientDep
) -> dict[str, Any]:
    """A new trainee, submitted for its TRN at once."""
    data = payload(body)
    if data is None:
        raise rejected(["data can't be blank"])
    values, errors = convert(data, FIELDS)
    errors.update((name, ["can't be blank"]) for name in REQUIRED if name not in data)
    refusal = provider_refused(client, values)
    if refusal is not None and "provider_code" not in errors:
        errors["provider_code"] = [refusal]
    if errors:
        raise rejected(
            [f"{name} {message}" for name, messages in errors.items() for message in messages]
        )
    known = session.exec(select(Trainee).where(Trainee.hesa_id == values["hesa_id"])).all()
    if known:
        # another provider's trainee is not this record system's to see, only to collide with
        content = {
            "errors": [{"error": "Conflict", "message": "This trainee is already in Register"}],
            "data": [serialize(t) for t in known if serves(client, t.provider_code)],
        }
        raise RegisterApiError(status.HTTP_409_CONFLICT, content)
    try:
        trainee = Trainee.model_validate(
            {
                **values,
                "record_source": "api",
                "created_at": clock.now(),
            }
        )
    except ValidationError as error:
        raise rejected(
            [f"{'.'.join(map(str, e['loc']))} {e['msg']}" for e in error.errors()]
        ) from error
    try:
        submit_for_trn(session, upstreams["dqt"], trainee, clock.now())
    except UnknownTrnError as error:
        raise rejected([str(error).replace(":", "", 1)]) from error
    return {"data": serialize(trainee)}


@router.get("/trainees/{trainee_id}")
def read_trainee(trainee_id: str, session: SessionDep, client: ClientDep) -> dict[str, Any]:
    """The trainee itself, not wrapped in `data`: as the spec's show answers."""
    return serialize(get_trainee(session, trainee_id, client))


@router.put("/trainees/{trainee_id}")
def update_trainee(
    trainee_id: str,
    body: Payload,
    session: SessionDep,
    upstreams: UpstreamsDep,
    clock: ClockDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Change what the request gives; DQT hears the route again while the trainee trains."""
    trainee = get_trainee(session, trainee_id, client)
    data = payload(body)
    if data is None:
        raise invalid({"data": ["can't be blank"]})
    values, errors = convert(data, FIELDS.keys() - NOT_UPDATABLE)
    if "provider_code" in values and (refusal := provider_refused(client, values)) is not None:
        errors["provider_code"] = [refusal]
    if errors:
        raise invalid(errors)
    trainee.sqlmodel_update(values)
    if trainee.state not in FINAL_STATES:
        try:
            report_status(upstreams["dqt"], trainee, clock.now())
        except UnknownTrnError as error:
            raise invalid({"trn": [str(error)]}) from error
    session.add(trainee)
    session.flush()
    return {"data": serialize(trainee)}


def required_date(data: Mapping[str, Any], name: str) -> date:
    value = data.get(name)
    if not value:
        raise unprocessable(f"{name} can't be blank")
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise unprocessable(f"{name} {value} is not a valid date") from error


def one_of(data: Mapping[str, Any], name: str, allowed: Collection[str]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise unprocessable(f"{name} must be one of {', '.join(allowed)}")
    return str(value)


def act(
    session: Session,
    upstreams: UpstreamsDep,
    trainee_id: str,
    event: TraineeEvent,
    clock: ClockDep,
    client: Principal,
    **changes: Any,
) -> dict[str, Any]:
    trainee = get_trainee(session, trainee_id, client)
    try:
        change(session, upstreams["dqt"], trainee, event, clock.now(), **changes)
    except TransitionError as error:
        raise unprocessable(str(error), "StateTransitionError") from error
    except UnknownTrnError as error:
        raise unprocessable(str(error)) from error
    return {"data": serialize(trainee)}


def action_data(body: Mapping[str, Any]) -> dict[str, Any]:
    data = payload(body)
    if data is None:
        raise unprocessable("data can't be blank")
    return data


@router.post("/trainees/{trainee_id}/defer")
def create_deferral(
    trainee_id: str,
    body: Payload,
    session: SessionDep,
    upstreams: UpstreamsDep,
    clock: ClockDep,
    client: ClientDep,
) -> dict[str, Any]:
    data = action_data(body)
    deferred = required_date(data, "defer_date")
    reason = data.get("defer_reason")
    return act(
        session,
        upstreams,
        trainee_id,
        "defer",
        clock,
        client,
        defer_date=deferred,
        defer_reason=reason,
    )


@router.post("/trainees/{trainee_id}/withdraw")
def create_withdrawal(
    trainee_id: str,
    body: Payload,
    session: SessionDep,
    upstreams: UpstreamsDep,
    clock: ClockDep,
    client: ClientDep,
) -> dict[str, Any]:
    data = action_data(body)
    withdrawn = required_date(data, "withdrawal_date")
    reasons = data.get("reasons")
    if (
        not isinstance(reasons, list)
        or not reasons
        or not all(isinstance(reason, str) and reason for reason in reasons)
    ):
        raise unprocessable("reasons can't be blank")
    return act(
        session,
        upstreams,
        trainee_id,
        "withdraw",
        clock,
        client,
        withdrawal_date=withdrawn,
        withdrawal_reasons=reasons,
        withdrawal_trigger=one_of(data, "trigger", WITHDRAWAL_TRIGGERS),
        withdrawal_future_interest=one_of(data, "future_interest", FUTURE_INTERESTS),
        withdrawal_another_reason=data.get("another_reason"),
        withdrawal_safeguarding_concern_reasons=data.get("safeguarding_concern_reasons"),
    )


@router.post("/trainees/{trainee_id}/recommend-for-qts", status_code=202)
def create_recommendation(
    trainee_id: str,
    body: Payload,
    session: SessionDep,
    upstreams: UpstreamsDep,
    clock: ClockDep,
    client: ClientDep,
) -> dict[str, Any]:
    """Recommend for QTS from the date the standards were met; DQT then holds it as awarded."""
    try:
        met = standards_met(required_date(action_data(body), "qts_standards_met_date"), clock.now())
    except ValueError as error:
        raise unprocessable(str(error).replace(":", "", 1)) from error
    return act(
        session, upstreams, trainee_id, "recommend_for_award", clock, client, outcome_date=met
    )


def add_error_handlers(app: FastAPI) -> None:
    """Register API refusals in the spec's shapes; the rest of Register keeps FastAPI's."""

    @app.exception_handler(RegisterApiError)
    async def register_api_error(_request: Request, error: RegisterApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
        return JSONResponse(error.content, status_code=error.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith(f"{PREFIX}/"):
            return await request_validation_exception_handler(request, error)
        messages = [
            {
                "error": "UnprocessableEntity",
                "message": f"{'.'.join(str(part) for part in e['loc'][1:]) or 'body'}: {e['msg']}",
            }
            for e in error.errors()
        ]
        return JSONResponse({"errors": messages}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
