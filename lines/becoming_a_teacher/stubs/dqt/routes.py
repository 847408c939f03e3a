"""DQT's API v3 as TRS serves it: TRN requests, persons by TRN, routes to professional status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.readers import DQT_TEACHERS
from lines.becoming_a_teacher.stubs.dqt.models import (
    FindPersonsBody,
    FindPersonsResponse,
    NameChange,
    PersonFound,
    Route,
    RouteBody,
    Teacher,
    TeacherCreate,
    TeacherResponse,
    TrnRequest,
    TrnRequestBody,
    TrnRequestInfo,
    teacher_response,
)
from lines.becoming_a_teacher.stubs.dqt.settings import DqtSettings
from lines.becoming_a_teacher.topology import LINE
from serviceline.model.credentials import Rule
from serviceline.owner.feed import add_new, new_record
from serviceline.runtime.crud import get_or_404
from serviceline.runtime.deps import (
    ApiAuth,
    ClockDep,
    CommandAuth,
    KernelDep,
    SessionDep,
    guard,
    personal,
)

router = APIRouter(prefix="/v3", tags=["dqt"])
# the real API wants a key for every read: here the services copying teachers hold one
TeacherReads = Depends(
    guard(personal("teacher", Rule("DQT's teachers", reads=("teacher", DQT_TEACHERS)), LINE))
)

# Register sends its trainee's slug as the route's reference
Reference = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,100}$")]
RequestIdQuery = Annotated[str, Query(alias="requestId", min_length=1, max_length=100)]
DateOfBirthQuery = Annotated[date | None, Query(alias="dateOfBirth")]


def dqt_settings(kernel: KernelDep) -> DqtSettings:
    settings = kernel.settings
    assert isinstance(settings, DqtSettings)  # create_app is only ever given DqtSettings
    return settings


SettingsDep = Annotated[DqtSettings, Depends(dqt_settings)]


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def get_person(session: Session, trn: str) -> Teacher:
    teacher = get_or_404(session, Teacher, trn, field="trn", what="person with TRN")
    if not answered_for(teacher):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"trn: person {trn!r} is deactivated")
    return teacher


def answered_for(teacher: Teacher, date_of_birth: date | None = None) -> bool:
    """TRS answers for an active person; asked with a date of birth, only if it is theirs."""
    return teacher.status != "Deactivated" and date_of_birth in (None, teacher.date_of_birth)


def request_info(request: TrnRequest) -> TrnRequestInfo:
    return TrnRequestInfo(request_id=request.request_id, status=request.status, trn=request.trn)


def check_route(body: RouteBody, today: date) -> None:
    """TRS's rules for a route: a holds-from date exactly when it holds, and in the past."""
    if body.status == "Holds":
        if body.holds_from is None:
            raise unprocessable("holdsFrom: required when status is Holds")
        if body.holds_from > today:
            raise unprocessable("holdsFrom: cannot be in the future")
    elif body.holds_from is not None:
        raise unprocessable(f"holdsFrom: cannot be given when status is {body.status}")
    if body.training_end_date <= body.training_start_date:
        raise unprocessable("trainingEndDate: must be after trainingStartDate")


@router.post("/trn-requests", dependencies=[CommandAuth])
def create_trn_request(
    body: TrnRequestBody, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> TrnRequestInfo:
    """Accept a request; the person and their TRN follow once DQT's delay has passed."""
    return accept_trn_requests(session, [body], clock.now(), settings, numbered=False)[0]


@router.post("/trn-requests/batch", dependencies=[CommandAuth])
def create_trn_requests(
    body: list[TrnRequestBody], session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> list[TrnRequestInfo]:
    """Many requests at once, as many single requests made at this moment would be: this
    model's own, for seeding (TRS takes one request at a time). None is kept if one is refused."""
    return accept_trn_requests(session, body, clock.now(), settings, numbered=True)


def accept_trn_requests(
    session: Session,
    bodies: list[TrnRequestBody],
    now: datetime,
    settings: DqtSettings,
    *,
    numbered: bool,
) -> list[TrnRequestInfo]:
    """Check every request before keeping any; a batch's refusal says which one, "[2] ..."."""
    ids = [body.request_id for body in bodies]
    made = set(
        session.exec(select(TrnRequest.request_id).where(col(TrnRequest.request_id).in_(ids)))
    )
    seen: set[str] = set()
    for index, body in enumerate(bodies):
        at = f"[{index}] " if numbered else ""
        if body.request_id in made or body.request_id in seen:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{at}requestId: a TRN request {body.request_id!r} has already been made",
            )
        seen.add(body.request_id)
        if body.person.date_of_birth >= now.date():
            raise unprocessable(f"{at}person.dateOfBirth: must be in the past")
    requests = [
        TrnRequest(
            request_id=body.request_id,
            **body.person.model_dump(),
            created_at=now,
            due_at=now + settings.trn_delay,
        )
        for body in bodies
    ]
    session.add_all(requests)
    session.flush()
    return [request_info(request) for request in requests]


@router.get("/trn-requests", dependencies=[CommandAuth])
def read_trn_request(request_id: RequestIdQuery, session: SessionDep) -> TrnRequestInfo:
    request = get_or_404(session, TrnRequest, request_id, field="requestId", what="TRN request")
    return request_info(request)


def born_on(session: Session, trn: str, date_of_birth: date | None) -> TeacherResponse:
    """The person with this TRN; with a date of birth, only if it is theirs (TRS's extra check)."""
    teacher = get_person(session, trn)
    if not answered_for(teacher, date_of_birth):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"dateOfBirth: no person {trn!r} born on {date_of_birth}"
        )
    return teacher_response(teacher)


@router.get("/teachers/{trn}", dependencies=[TeacherReads])
def read_teacher(
    trn: str, session: SessionDep, date_of_birth: DateOfBirthQuery = None
) -> TeacherResponse:
    """As Claims and Placements read their mentors, one TRN at a time."""
    return born_on(session, trn, date_of_birth)


@router.get("/persons/{trn}", dependencies=[TeacherReads])
def read_person(
    trn: str, session: SessionDep, date_of_birth: DateOfBirthQuery = None
) -> TeacherResponse:
    """As Register reads a trainee's record."""
    return born_on(session, trn, date_of_birth)


@router.post("/persons/find", dependencies=[TeacherReads])
def find_persons(body: FindPersonsBody, session: SessionDep) -> FindPersonsResponse:
    """As Claims and Placements check a batch of mentors: only the persons whose TRN and date of
    birth both match are in the results, once each."""
    trns = {person.trn for person in body.persons}
    held = session.exec(select(Teacher).where(col(Teacher.trn).in_(trns)))
    teachers = {teacher.trn: teacher for teacher in held}
    found: dict[str, PersonFound] = {
        person.trn: teacher_response(teacher)
        for person in body.persons
        if (teacher := teachers.get(person.trn)) and answered_for(teacher, person.date_of_birth)
    }
    results = list(found.values())
    return FindPersonsResponse(total=len(results), query=body, results=results)


@router.put(
    "/persons/{trn}/routes-to-professional-statuses/{reference}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[CommandAuth],
)
def update_route(
    trn: str, reference: Reference, body: RouteBody, session: SessionDep, clock: ClockDep
) -> None:
    """Set a route; one that holds awards QTS from its holds-from date."""
    teacher = get_person(session, trn)
    check_route(body, clock.now().date())
    values = body.model_dump(exclude={"route_to_professional_status_type_id", "degree_type_id"})
    values.update(
        route_type_id=str(body.route_to_professional_status_type_id),
        degree_type_id=str(body.degree_type_id) if body.degree_type_id else None,
        updated_at=clock.now(),
    )
    route = session.get(Route, (trn, reference))
    if route is None:
        route = Route(trn=trn, reference=reference, **values)
    else:
        route.sqlmodel_update(values)
    session.add(route)
    if body.status == "Holds":
        teacher.sqlmodel_update({"qts_date": body.holds_from, "kind": "teacher"})
        session.add(teacher)
    session.flush()


@router.post(
    "/teachers/name-changes", status_code=status.HTTP_204_NO_CONTENT, dependencies=[ApiAuth]
)
def create_name_change(body: NameChange, session: SessionDep) -> None:
    """A person's new name; TRS's support staff check the evidence, here it is taken at once."""
    teacher = get_person(session, body.trn)
    teacher.sqlmodel_update(body.model_dump(include={"first_name", "middle_name", "last_name"}))
    session.add(teacher)
    session.flush()


@router.post("/teachers/batch", status_code=201, dependencies=[ApiAuth])
def create_teachers(
    body: list[TeacherCreate], session: SessionDep, clock: ClockDep
) -> dict[str, int]:
    add_new(
        session,
        [
            new_record(Teacher, teacher, {"created_at": clock.now()}, at=index)
            for index, teacher in enumerate(body)
        ],
    )
    return {"created": len(body)}
