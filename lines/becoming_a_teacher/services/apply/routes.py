"""Apply's candidate-facing API: candidates submit course choices and answer offers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import func
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.apply.models import (
    CANDIDATE_NUMBER,
    LIVE,
    Application,
    ApplicationCreate,
    ApplicationPublic,
    Candidate,
    CandidateCreate,
    CandidatePublic,
    CandidateUpdate,
    CourseCopy,
    Event,
    TransitionError,
    new_application_id,
    valid_sites,
)
from serviceline.owner.feed import add_new, new_record
from serviceline.runtime.crud import get_or_404, update_from
from serviceline.runtime.deps import ApiAuth, ClockDep, KernelDep, SessionDep

router = APIRouter(tags=["candidates"], dependencies=[ApiAuth])
# how old a candidate can be when they apply: teacher training takes adults of working age
MIN_AGE, MAX_AGE = 16, 100


def public(session: Session, applications: Sequence[Application]) -> list[ApplicationPublic]:
    """Applications as the API shows them, each with whether Publish still lists its site."""
    sites = valid_sites(session, {a.provider_code for a in applications})
    return [
        ApplicationPublic.model_validate(
            a, update={"site_still_valid": (a.provider_code, a.site_code) in sites}
        )
        for a in applications
    ]


def next_candidate_number(session: Session) -> int:
    top = session.exec(select(func.max(CANDIDATE_NUMBER))).one()
    return int(top or 999) + 1


def choice_problem(
    choice: ApplicationCreate,
    course: CourseCopy | None,
    candidates: Collection[str],
    sites: Collection[tuple[str, str]],
    taken: Collection[tuple[str, str]],
    now: datetime,
) -> str | None:
    if choice.candidate_id not in candidates:
        return f"candidate_id: no candidate {choice.candidate_id!r}"
    age = now.year - choice.date_of_birth.year
    if not MIN_AGE <= age <= MAX_AGE:
        return f"date_of_birth: a candidate is {MIN_AGE} to {MAX_AGE} years old, not {age}"
    if course is None:
        return f"course_uuid: Apply's copy of Publish's courses has no {choice.course_uuid!r}"
    name = f"{course.provider_code}/{course.code}"
    if course.withdrawn:
        return f"course_uuid: course {name} has been withdrawn"
    if not course.exposed_in_find:
        return f"course_uuid: course {name} is not open for applications"
    if course.study_mode not in (choice.study_mode, "full_time_or_part_time"):
        return f"study_mode: course {name} runs {course.study_mode} only"
    if (course.provider_code, choice.site_code) not in sites:
        return f"site_code: Apply's copy has no site {choice.site_code!r} of {course.provider_code}"
    if (choice.candidate_id, course.uuid) in taken:
        return f"course_uuid: candidate {choice.candidate_id} has already applied to {name}"
    return None


def submit(
    session: Session,
    choices: Sequence[ApplicationCreate],
    year: int,
    now: datetime,
    *,
    numbered: bool,
) -> list[Application]:
    """Check every choice against Apply's own copies (Publish is never asked), then store them."""
    wanted = {choice.candidate_id for choice in choices}
    candidates = set(session.exec(select(Candidate.id).where(col(Candidate.id).in_(wanted))))
    uuids = {choice.course_uuid for choice in choices}
    courses = {
        course.uuid: course
        for course in session.exec(select(CourseCopy).where(col(CourseCopy.uuid).in_(uuids)))
    }
    sites = valid_sites(session, {course.provider_code for course in courses.values()})
    # by candidate alone: a status index would be chosen, and it covers almost every application
    mine = select(Application.candidate_id, Application.course_uuid, Application.status).where(
        col(Application.candidate_id).in_(candidates)
    )
    taken = {
        (candidate, course) for candidate, course, state in session.exec(mine) if state in LIVE
    }
    applications = []
    for index, choice in enumerate(choices):
        course = courses.get(choice.course_uuid)
        problem = choice_problem(choice, course, candidates, sites, taken, now)
        if problem is not None:
            detail = f"[{index}] {problem}" if numbered else problem
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)
        assert course is not None  # choice_problem reports a missing course
        taken.add((choice.candidate_id, course.uuid))
        application = new_record(
            Application,
            choice.model_dump(exclude={"history"}),
            {
                "id": choice.id or new_application_id(),
                "provider_code": course.provider_code,
                "course_code": course.code,
                "recruitment_cycle_year": year,
                "submitted_at": now,
            },
            at=index if numbered else None,
        )
        for event in choice.history:
            try:
                application.move(event, now)
            except TransitionError as error:
                where = f"[{index}] " if numbered else ""
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, f"{where}history: {error}"
                ) from error
        applications.append(application)
    add_new(session, applications)
    return applications


def move(session: Session, id: str, event: Event, now: datetime) -> ApplicationPublic:
    application = get_or_404(session, Application, id, field="id", what="application")
    try:
        application.move(event, now)
    except TransitionError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    session.add(application)
    session.flush()
    return public(session, [application])[0]


@router.post("/candidates", status_code=201, response_model=CandidatePublic)
def create_candidate(body: CandidateCreate, session: SessionDep, clock: ClockDep) -> Candidate:
    return create_candidates([body], session, clock)[0]


@router.post("/candidates/batch", status_code=201, response_model=list[CandidatePublic])
def create_candidates(
    body: list[CandidateCreate], session: SessionDep, clock: ClockDep
) -> list[Candidate]:
    first = next_candidate_number(session)
    candidates = [
        new_record(Candidate, c, {"id": f"C{first + n}", "created_at": clock.now()}, at=n)
        for n, c in enumerate(body)
    ]
    add_new(session, candidates)
    return candidates


@router.get("/candidates/{id}", response_model=CandidatePublic)
def read_candidate(id: str, session: SessionDep) -> Candidate:
    return get_or_404(session, Candidate, id, field="id", what="candidate")


@router.patch("/candidates/{id}", response_model=CandidatePublic)
def update_candidate(id: str, body: CandidateUpdate, session: SessionDep) -> Candidate:
    candidate = get_or_404(session, Candidate, id, field="id", what="candidate")
    return update_from(session, candidate, body)


@router.post("/applications", status_code=201)
def create_application(
    body: ApplicationCreate, session: SessionDep, kernel: KernelDep, clock: ClockDep
) -> ApplicationPublic:
    year = kernel.settings.recruitment_cycle_year
    return public(session, submit(session, [body], year, clock.now(), numbered=False))[0]


@router.post("/applications/batch", status_code=201)
def create_applications(
    body: list[ApplicationCreate], session: SessionDep, kernel: KernelDep, clock: ClockDep
) -> list[ApplicationPublic]:
    year = kernel.settings.recruitment_cycle_year
    return public(session, submit(session, body, year, clock.now(), numbered=True))


@router.get("/applications/{id}")
def read_application(id: str, session: SessionDep) -> ApplicationPublic:
    application = get_or_404(session, Application, id, field="id", what="application")
    return public(session, [application])[0]


@router.post("/applications/{id}/accept-offer")
def create_acceptance(id: str, session: SessionDep, clock: ClockDep) -> ApplicationPublic:
    """An unconditional offer, once accepted, recruits the candidate at once."""
    application = get_or_404(session, Application, id, field="id", what="application")
    conditional = bool(application.offer_conditions)
    event: Event = "accept" if conditional else "accept_unconditional_offer"
    return move(session, id, event, clock.now())


@router.post("/applications/{id}/decline-offer")
def create_decline(id: str, session: SessionDep, clock: ClockDep) -> ApplicationPublic:
    return move(session, id, "decline", clock.now())


@router.post("/applications/{id}/withdraw")
def create_withdrawal(id: str, session: SessionDep, clock: ClockDep) -> ApplicationPublic:
    return move(session, id, "withdraw", clock.now())
