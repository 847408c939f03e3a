"""Manage's API: applications read from its copy, decisions sent to Apply as vendor API commands."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.identifiers import ProviderCode
from lines.becoming_a_teacher.services.manage.models import (
    ApplicationCopy,
    ApplicationView,
    ConditionsMetDecision,
    Note,
    NoteCreate,
    OfferDecision,
    Partnership,
    PartnershipCreate,
    ProviderUser,
    RejectDecision,
)
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.crud import get_or_404
from serviceline.runtime.deps import ApiAuth, ClockDep, SessionDep, UpstreamsDep
from serviceline.runtime.upstream import UpstreamError

router = APIRouter(tags=["manage"], dependencies=[ApiAuth])

# the vendor API's application id: at most 10 characters, and nothing that leaves its path
ApplicationId = Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,10}$")]


def get_copy(session: Session, id: str) -> ApplicationCopy:
    return get_or_404(
        session,
        ApplicationCopy,
        id,
        field="id",
        what="copy of application",
        hint="yet: Manage copies applications from Apply at each sync",
    )


async def command(
    upstreams: UpstreamsDep,
    id: str,
    action: str,
    user: ProviderUser,
    clock: SimulatedClock,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send a decision to Apply, which owns the application, and return Apply's answer."""
    body: dict[str, Any] = {
        "meta": {"attribution": user.model_dump(), "timestamp": clock.now().isoformat()}
    }
    if data is not None:
        body["data"] = data
    try:
        answer: dict[str, Any] = await upstreams["apply"].post_json(
            f"/api/v1/applications/{id}/{action}", body
        )
    except UpstreamError as error:
        # Apply's refusal of this decision is the caller's to see; any other failure is a 502
        if error.status in (status.HTTP_404_NOT_FOUND, status.HTTP_422_UNPROCESSABLE_CONTENT):
            raise HTTPException(error.status, str(error)) from error
        raise
    return answer


@router.get("/applications")
def list_applications(
    session: SessionDep,
    provider_code: ProviderCode | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[ApplicationCopy]:
    query = select(ApplicationCopy).order_by(col(ApplicationCopy.id)).limit(limit)
    if provider_code is not None:
        query = query.where(ApplicationCopy.provider_code == provider_code)
    if after is not None:
        query = query.where(col(ApplicationCopy.id) > after)
    return list(session.exec(query))


@router.get("/applications/{id}")
def read_application(id: ApplicationId, session: SessionDep) -> ApplicationView:
    notes = session.exec(
        select(Note).where(Note.application_id == id).order_by(col(Note.created_at), col(Note.id))
    )
    return ApplicationView(application=get_copy(session, id), notes=list(notes))


@router.post("/applications/{id}/notes", status_code=201)
def create_note(id: ApplicationId, body: NoteCreate, session: SessionDep, clock: ClockDep) -> Note:
    get_copy(session, id)
    note = Note.model_validate(body, update={"application_id": id, "created_at": clock.now()})
    session.add(note)
    session.flush()
    return note


@router.post("/applications/{id}/offer")
async def create_offer(
    id: ApplicationId, body: OfferDecision, upstreams: UpstreamsDep, clock: ClockDep
) -> dict[str, Any]:
    data = {"conditions": body.conditions}
    return await command(upstreams, id, "offer", body.user, clock, data)


@router.post("/applications/{id}/reject")
async def create_rejection(
    id: ApplicationId, body: RejectDecision, upstreams: UpstreamsDep, clock: ClockDep
) -> dict[str, Any]:
    rejection = {"reason": body.reason, "date": clock.now().isoformat()}
    return await command(upstreams, id, "reject", body.user, clock, rejection)


@router.post("/applications/{id}/confirm-conditions-met")
async def create_conditions_met(
    id: ApplicationId, body: ConditionsMetDecision, upstreams: UpstreamsDep, clock: ClockDep
) -> dict[str, Any]:
    return await command(upstreams, id, "confirm-conditions-met", body.user, clock)


@router.get("/partnerships")
def list_partnerships(session: SessionDep) -> list[Partnership]:
    return list(session.exec(select(Partnership).order_by(col(Partnership.id))))


@router.post("/partnerships", status_code=201)
def create_partnership(
    body: PartnershipCreate, session: SessionDep, clock: ClockDep
) -> Partnership:
    if body.accredited_provider_code == body.lead_partner_code:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "lead_partner_code: must differ from accredited_provider_code",
        )
    partnership = Partnership.model_validate(body, update={"created_at": clock.now()})
    session.add(partnership)
    session.flush()
    return partnership
