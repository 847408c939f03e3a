"""Register's own API: the screens providers use to add trainees and move them towards QTS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.identifiers import ProviderCode
from lines.becoming_a_teacher.services.register.models import (
    CourseCopy,
    Deferral,
    Recommendation,
    Trainee,
    TraineeCreate,
    TraineeEvent,
    TraineeState,
    TransitionError,
    TrnRequest,
    Withdrawal,
)
from lines.becoming_a_teacher.services.register.trn import (
    UnknownTrnError,
    change,
    standards_met,
    submit_all_for_trn,
    submit_for_trn,
)
from serviceline.owner.feed import new_record
from serviceline.runtime.crud import get_or_404
from serviceline.runtime.deps import ApiAuth, ClockDep, SessionDep, UpstreamsDep

router = APIRouter(tags=["trainees"], dependencies=[ApiAuth])


def get_trainee(session: Session, slug: str) -> Trainee:
    return get_or_404(session, Trainee, slug, field="slug", what="trainee")


def refused(error: ValueError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))


@router.get("/trainees")
def list_trainees(
    session: SessionDep,
    state: TraineeState | None = None,
    provider_code: ProviderCode | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[Trainee]:
    query = select(Trainee).order_by(col(Trainee.slug)).limit(limit)
    if state is not None:
        query = query.where(Trainee.state == state)
    if provider_code is not None:
        query = query.where(Trainee.provider_code == provider_code)
    if after is not None:
        query = query.where(col(Trainee.slug) > after)
    return list(session.exec(query))


@router.get("/trainees/{slug}")
def read_trainee(slug: str, session: SessionDep) -> Trainee:
    return get_trainee(session, slug)


@router.post("/trainees", status_code=201)
def create_trainee(body: TraineeCreate, session: SessionDep, clock: ClockDep) -> Trainee:
    return create_trainees([body], session, clock)[0]


@router.post("/trainees/batch", status_code=201)
def create_trainees(
    body: list[TraineeCreate], session: SessionDep, clock: ClockDep
) -> list[Trainee]:
    """Drafts a provider user starts by hand; each is submitted for its TRN on its own."""
    check_courses(session, body)
    trainees = [
        new_record(Trainee, draft, {"record_source": "manual", "created_at": clock.now()}, at=index)
        for index, draft in enumerate(body)
    ]
    session.add_all(trainees)
    session.flush()
    return trainees


def check_courses(session: Session, drafts: list[TraineeCreate]) -> None:
    """A draft's course must be one Register copied from Publish, of the draft's provider."""
    uuids = {draft.course_uuid for draft in drafts if draft.course_uuid is not None}
    providers = dict(
        session.exec(
            select(CourseCopy.uuid, CourseCopy.provider_code).where(col(CourseCopy.uuid).in_(uuids))
        ).all()
    )
    for index, draft in enumerate(drafts):
        if draft.course_uuid is None:
            continue
        provider = providers.get(draft.course_uuid)
        if provider is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"[{index}] course_uuid: Register's copy of Publish has no course "
                f"{draft.course_uuid!r}",
            )
        if draft.provider_code not in (None, provider):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"[{index}] provider_code: course {draft.course_uuid} is {provider}'s, "
                f"not {draft.provider_code}'s",
            )


@router.post("/trainees/{slug}/submit-for-trn")
def create_trn_submission(
    slug: str, session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep
) -> Trainee:
    """Submit a draft: DQT is asked for its TRN, which Register then polls for."""
    trainee = get_trainee(session, slug)
    try:
        submit_for_trn(session, upstreams["dqt"], trainee, clock.now())
    except ValueError as error:
        raise refused(error) from error
    return trainee


@router.post("/trainees/submit-for-trn/batch")
def create_trn_submissions(
    body: list[str], session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep
) -> list[Trainee]:
    """Submit many drafts by slug, as a seed does; none is submitted if one cannot be."""
    found = {
        trainee.slug: trainee
        for trainee in session.exec(select(Trainee).where(col(Trainee.slug).in_(body)))
    }
    for index, slug in enumerate(body):
        if slug not in found:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"[{index}] slug: Register has no trainee {slug!r}",
            )
    trainees = [found[slug] for slug in body]
    try:
        submit_all_for_trn(session, upstreams["dqt"], trainees, clock.now())
    except ValueError as error:
        raise refused(error) from error
    return trainees


def step(
    session: Session,
    upstreams: UpstreamsDep,
    slug: str,
    event: TraineeEvent,
    clock: ClockDep,
    **changes: object,
) -> Trainee:
    trainee = get_trainee(session, slug)
    try:
        return change(session, upstreams["dqt"], trainee, event, clock.now(), **changes)
    except (TransitionError, UnknownTrnError) as error:
        raise refused(error) from error


@router.post("/trainees/{slug}/defer")
def create_deferral(
    slug: str, body: Deferral, session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep
) -> Trainee:
    return step(
        session,
        upstreams,
        slug,
        "defer",
        clock,
        defer_date=body.defer_date or clock.now().date(),
        defer_reason=body.defer_reason,
    )


@router.post("/trainees/{slug}/reinstate")
def create_reinstatement(
    slug: str, session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep
) -> Trainee:
    """Back into training after a deferral."""
    return step(session, upstreams, slug, "reinstate", clock, reinstate_date=clock.now().date())


@router.post("/trainees/{slug}/withdraw")
def create_withdrawal(
    slug: str, body: Withdrawal, session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep
) -> Trainee:
    return step(
        session,
        upstreams,
        slug,
        "withdraw",
        clock,
        withdrawal_date=body.withdrawal_date or clock.now().date(),
        withdrawal_reasons=list(body.reasons),
        withdrawal_trigger=body.trigger,
        withdrawal_future_interest=body.future_interest,
        withdrawal_another_reason=body.another_reason,
        withdrawal_safeguarding_concern_reasons=body.safeguarding_concern_reasons,
    )


@router.post("/trainees/{slug}/recommend-for-award")
def create_recommendation(
    slug: str, body: Recommendation, session: SessionDep, upstreams: UpstreamsDep, clock: ClockDep
) -> Trainee:
    """Recommend for QTS: DQT is told the trainee holds it, and the trainee is then awarded."""
    try:
        met = standards_met(body.qts_standards_met_date, clock.now())
    except ValueError as error:
        raise refused(error) from error
    return step(session, upstreams, slug, "recommend_for_award", clock, outcome_date=met)


@router.get("/trn-requests")
def list_trn_requests(session: SessionDep, slug: str | None = None) -> list[TrnRequest]:
    query = select(TrnRequest).order_by(col(TrnRequest.requested_at), col(TrnRequest.request_id))
    if slug is not None:
        query = query.where(TrnRequest.slug == slug)
    return list(session.exec(query))
