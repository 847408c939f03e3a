"""Claims' API: schools from its copy, their mentors, and claims for the mentors' training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query, status
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, delete, func, select

from lines.becoming_a_teacher.identifiers import AcademicYear, ProviderCode, Urn
from lines.becoming_a_teacher.services.claims.models import (
    DRAFT_STATUSES,
    Allowance,
    Claim,
    ClaimCreate,
    ClaimPublic,
    ClaimStatus,
    ClaimSummary,
    Ledger,
    Mentor,
    MentorTraining,
    MentorTrainingCreate,
    MentorTrainingPublic,
    Provider,
    School,
    SchoolPublic,
    SchoolUpdate,
    Submission,
    allowances,
    new_references,
    new_uuid,
)
from lines.becoming_a_teacher.services.mentoring import records
from lines.becoming_a_teacher.services.mentoring.funding import PENNY, hourly_rate
from lines.becoming_a_teacher.services.mentoring.models import (
    FundingRegion,
    academic_year_name,
    academic_year_of,
)
from lines.becoming_a_teacher.services.mentoring.routes import mentoring_router
from lines.becoming_a_teacher.topology import LINE
from serviceline.runtime.crud import by_key, get_or_404, update_from
from serviceline.runtime.deps import OWN_API, ApiAuth, ClockDep, SessionDep, guard, personal

Limit = Annotated[int, Query(ge=1, le=5000)]


def summary(claim: Claim, region: FundingRegion | None, hours: int) -> ClaimSummary:
    rate = hourly_rate(region)
    return ClaimSummary(
        **claim.model_dump(),
        claim_window=academic_year_name(claim.academic_year),
        funding_region=region,
        funding_available_per_hour=rate,
        hours_completed=hours,
        amount=(rate * hours).quantize(PENNY),
    )


def summaries(session: Session, claims: Sequence[Claim]) -> list[ClaimSummary]:
    """Many claims' amounts, from one query for their hours and one for their schools' regions."""
    ids = [claim.id for claim in claims]
    totals = session.exec(
        select(MentorTraining.claim_id, func.sum(MentorTraining.hours_completed))
        .where(col(MentorTraining.claim_id).in_(ids))
        .group_by(col(MentorTraining.claim_id))
    )
    hours = {claim_id: int(total) for claim_id, total in totals}
    urns = list({claim.school_urn for claim in claims})
    schools = session.exec(select(School).where(col(School.urn).in_(urns)))
    regions = {school.urn: school.funding_region for school in schools}
    return [
        summary(claim, regions.get(claim.school_urn), hours.get(claim.id, 0)) for claim in claims
    ]


def trainings_of(session: Session, claim: Claim) -> list[MentorTraining]:
    query = select(MentorTraining).where(MentorTraining.claim_id == claim.id)
    return list(session.exec(query.order_by(col(MentorTraining.mentor_trn))))


def view(session: Session, claim: Claim) -> ClaimPublic:
    """A claim with each mentor's training, its amount and the mentor's cap."""
    school = session.get(School, claim.school_urn)
    region = school.funding_region if school is not None else None
    rate = hourly_rate(region)
    trainings = trainings_of(session, claim)
    limits = allowances(session, claim, [training.mentor_trn for training in trainings])
    lines = [
        MentorTrainingPublic(
            **training.model_dump(),
            amount=(rate * training.hours_completed).quantize(PENNY),
            hours_allowed=limits[training.mentor_trn].hours_allowed,
            hours_claimed_elsewhere=limits[training.mentor_trn].hours_claimed_elsewhere,
        )
        for training in trainings
    ]
    hours = sum(training.hours_completed for training in trainings)
    return ClaimPublic(**summary(claim, region, hours).model_dump(), mentor_trainings=lines)


def draft(claim: Claim) -> Claim:
    if claim.status not in DRAFT_STATUSES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"status: claim {claim.reference} is {claim.status}; only a draft claim changes",
        )
    return claim


def touch(session: Session, claim: Claim) -> None:
    """A change to a claim's mentor training is a change to the claim: a new version of it."""
    flag_modified(claim, "status")
    session.add(claim)


def new_trainings(
    session: Session,
    claim: Claim,
    items: Sequence[MentorTrainingCreate],
    today: date,
    path: str | None,
) -> list[MentorTraining]:
    """Line items for the school's mentors, each within the mentor's allowance of hours."""
    trns = [item.mentor_trn for item in items]
    mentors = by_key(session, Mentor, trns)
    limits = allowances(session, claim, trns)
    return checked_trainings(claim, items, mentors, limits, today, path)


def checked_trainings(
    claim: Claim,
    items: Sequence[MentorTrainingCreate],
    mentors: Mapping[str, Mentor],
    limits: Mapping[str, Allowance],
    today: date,
    path: str | None,
) -> list[MentorTraining]:
    """The line items, if each is one of the school's mentors' and within their allowance."""
    seen: set[str] = set()
    trainings = []
    for index, item in enumerate(items):
        at = "" if path is None else f"{path}[{index}]."
        trn = item.mentor_trn
        mentor = mentors.get(trn)
        if mentor is None or claim.school_urn not in mentor.school_urns:
            raise records.unprocessable(
                f"{at}mentor_trn: {trn} is not one of school {claim.school_urn}'s mentors"
            )
        if trn in seen:
            raise records.unprocessable(f"{at}mentor_trn: {trn} appears twice in one claim")
        seen.add(trn)
        limit = limits[trn]
        if item.training_type not in (None, limit.training_type):
            raise records.unprocessable(
                f"{at}training_type: {trn}'s training with provider {claim.provider_code} in "
                f"{academic_year_name(claim.academic_year)} is {limit.training_type}"
            )
        if item.hours_completed > limit.remaining:
            raise records.unprocessable(
                f"{at}hours_completed: {trn} has {limit.remaining} of {limit.hours_allowed} hours "
                f"of {limit.training_type} training left with provider {claim.provider_code} in "
                f"{academic_year_name(claim.academic_year)}"
            )
        if item.date_completed is not None and item.date_completed > today:
            raise records.unprocessable(f"{at}date_completed: {item.date_completed} is to come")
        trainings.append(
            MentorTraining(
                claim_id=claim.id,
                mentor_trn=trn,
                training_type=limit.training_type,
                hours_completed=item.hours_completed,
                date_completed=item.date_completed,
            )
        )
    return trainings


def needs_training(trainings: Sequence[MentorTraining], at: str) -> None:
    if not trainings:
        raise records.unprocessable(f"{at}mentor_trainings: a claim needs a mentor's training")


def settle(claim: Claim, by: str, now: datetime) -> None:
    claim.sqlmodel_update({"status": "submitted", "submitted_at": now, "submitted_by": by})


def submit(session: Session, claim: Claim, by: str, now: datetime, at: str = "") -> None:
    """Submit a draft, checking every mentor's hours again against claims submitted since."""
    draft(claim)
    trainings = trainings_of(session, claim)
    needs_training(trainings, at)
    # the training type is decided afresh: a claim of an earlier year may have been submitted
    items = [
        MentorTrainingCreate.model_validate(t.model_dump(exclude={"training_type"}))
        for t in trainings
    ]
    checked = new_trainings(session, claim, items, now.date(), f"{at}mentor_trainings")
    for training, check in zip(trainings, checked, strict=True):
        training.training_type = check.training_type
        session.add(training)
    settle(claim, by, now)
    session.add(claim)
    session.flush()


def drafted(
    body: ClaimCreate,
    reference: str,
    current: int,
    schools: Mapping[str, School],
    providers: Mapping[str, Provider],
    now: datetime,
    at: str,
) -> Claim:
    """A new draft claim, in a claim window open now, for a school and provider in the copies."""
    year = current if body.academic_year is None else body.academic_year
    if year > current:
        raise records.unprocessable(
            f"{at}academic_year: the claim window for {academic_year_name(year)} "
            f"has not opened; this is {academic_year_name(current)}"
        )
    try:
        records.open_school(schools, body.school_urn, "school_urn")
        records.listed_provider(providers, body.provider_code, "provider_code")
    except HTTPException as error:
        raise records.unprocessable(at + str(error.detail)) from error
    return Claim(
        id=new_uuid(),
        reference=reference,
        school_urn=body.school_urn,
        provider_code=body.provider_code,
        academic_year=year,
        created_at=now,
    )


def new_claims(
    session: Session, bodies: Sequence[ClaimCreate], now: datetime, *, numbered: bool
) -> list[Claim]:
    """Draft claims in the current claim window or an earlier one, submitted if asked: each
    within the hours left by the claims submitted before it, this batch's own among them."""
    current = academic_year_of(now.date())
    codes = [body.provider_code for body in bodies]
    trns = {item.mentor_trn for body in bodies for item in body.mentor_trainings}
    schools = by_key(session, School, [body.school_urn for body in bodies])
    providers = by_key(session, Provider, codes)
    mentors = by_key(session, Mentor, trns)
    ledger = Ledger.read(session, codes, trns, current)
    claims, trainings, submitted = [], [], []
    references = new_references(session, len(bodies))
    for index, (body, reference) in enumerate(zip(bodies, references, strict=True)):
        at = f"[{index}] " if numbered else ""
        claim = drafted(body, reference, current, schools, providers, now, at)
        items = body.mentor_trainings
        limits = ledger.allowances(claim, [item.mentor_trn for item in items])
        lines = checked_trainings(
            claim, items, mentors, limits, now.date(), f"{at}mentor_trainings"
        )
        if body.submitted_by is not None:
            needs_training(lines, at)
            ledger.submitted(claim, lines)
            submitted.append((claim, body.submitted_by))
        claims.append(claim)
        trainings += lines
    session.add_all([*claims, *trainings])
    session.flush()
    # made a draft, then submitted: a second version, as a claim submitted later has
    for claim, by in submitted:
        settle(claim, by, now)
    session.flush()
    return claims


def read_school(urn: str, session: SessionDep) -> SchoolPublic:
    school = records.read_school(session, School, urn)
    rate = hourly_rate(school.funding_region)
    return SchoolPublic.model_validate(school, update={"funding_available_per_hour": rate})


def update_school(urn: str, body: SchoolUpdate, session: SessionDep) -> School:
    """Onboard a school to Claims, or take it off."""
    return update_from(session, records.read_school(session, School, urn), body)


def claimed_training(session: Session, trn: str, urn: str) -> str | None:
    claimed = session.exec(
        select(MentorTraining.id)
        .join(Claim)
        .where(Claim.school_urn == urn, MentorTraining.mentor_trn == trn)
    ).first()
    if claimed is not None:
        return f"trn: school {urn} has claimed for {trn}'s training"
    return None


router = mentoring_router(
    "claims",
    school=School,
    mentor=Mentor,
    read_school=read_school,
    update_school=update_school,
    held=claimed_training,
)

ClaimReads = Depends(guard(personal("claim", OWN_API, LINE)))


@router.get("/claims", dependencies=[ClaimReads])
def list_claims(
    session: SessionDep,
    school_urn: Urn | None = None,
    provider_code: ProviderCode | None = None,
    academic_year: AcademicYear | None = None,
    claim_status: Annotated[ClaimStatus | None, Query(alias="status")] = None,
    after: str | None = None,
    limit: Limit = 500,
) -> list[ClaimSummary]:
    query = select(Claim).order_by(col(Claim.id)).limit(limit)
    if school_urn is not None:
        query = query.where(Claim.school_urn == school_urn)
    if provider_code is not None:
        query = query.where(Claim.provider_code == provider_code)
    if academic_year is not None:
        query = query.where(Claim.academic_year == academic_year)
    if claim_status is not None:
        query = query.where(Claim.status == claim_status)
    if after is not None:
        query = query.where(col(Claim.id) > after)
    return summaries(session, list(session.exec(query)))


@router.get("/claims/{id}", dependencies=[ClaimReads])
def read_claim(id: str, session: SessionDep) -> ClaimPublic:
    return view(session, get_or_404(session, Claim, id, field="id", what="claim"))


@router.post("/claims", status_code=201, dependencies=[ApiAuth])
def create_claim(body: ClaimCreate, session: SessionDep, clock: ClockDep) -> ClaimPublic:
    return view(session, new_claims(session, [body], clock.now(), numbered=False)[0])


@router.post("/claims/batch", status_code=201, dependencies=[ApiAuth])
def create_claims(
    body: list[ClaimCreate], session: SessionDep, clock: ClockDep
) -> list[ClaimSummary]:
    return summaries(session, new_claims(session, body, clock.now(), numbered=True))


@router.post("/claims/{id}/mentor_trainings", status_code=201, dependencies=[ApiAuth])
def create_mentor_training(
    id: str, body: MentorTrainingCreate, session: SessionDep, clock: ClockDep
) -> ClaimPublic:
    """Add one mentor's training to a draft claim."""
    claim = draft(get_or_404(session, Claim, id, field="id", what="claim"))
    if any(training.mentor_trn == body.mentor_trn for training in trainings_of(session, claim)):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"mentor_trn: {body.mentor_trn} is already on claim {claim.reference}; "
            "replace the claim's mentor_trainings to change it",
        )
    session.add_all(new_trainings(session, claim, [body], clock.now().date(), None))
    touch(session, claim)
    session.flush()
    return view(session, claim)


@router.put("/claims/{id}/mentor_trainings", dependencies=[ApiAuth])
def replace_mentor_trainings(
    id: str, body: list[MentorTrainingCreate], session: SessionDep, clock: ClockDep
) -> ClaimPublic:
    """Replace a draft claim's mentor training with this list."""
    claim = draft(get_or_404(session, Claim, id, field="id", what="claim"))
    trainings = new_trainings(session, claim, body, clock.now().date(), "mentor_trainings")
    session.exec(delete(MentorTraining).where(col(MentorTraining.claim_id) == claim.id))
    session.add_all(trainings)
    touch(session, claim)
    session.flush()
    return view(session, claim)


@router.post("/claims/{id}/submit", dependencies=[ApiAuth])
def create_submission(
    id: str, body: Submission, session: SessionDep, clock: ClockDep
) -> ClaimPublic:
    claim = get_or_404(session, Claim, id, field="id", what="claim")
    submit(session, claim, body.submitted_by, clock.now())
    return view(session, claim)
