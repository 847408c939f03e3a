"""Placements' API: schools from its copy, their placements, partnerships and mentors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Annotated

from fastapi import HTTPException, Query
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.identifiers import ProviderCode, Urn
from lines.becoming_a_teacher.services.mentoring import records
from lines.becoming_a_teacher.services.mentoring.models import academic_year_name, academic_year_of
from lines.becoming_a_teacher.services.mentoring.routes import mentoring_router
from lines.becoming_a_teacher.services.placements.models import (
    Mentor,
    Placement,
    PlacementCreate,
    PlacementUpdate,
    Provider,
    School,
    SchoolPartnership,
    SchoolPartnershipCreate,
    SchoolUpdate,
)
from serviceline.owner.feed import add_new, new_record
from serviceline.runtime.crud import by_key, get_or_404, update_from
from serviceline.runtime.deps import ApiAuth, ClockDep, SessionDep

Limit = Annotated[int, Query(ge=1, le=5000)]


def check_placement(session: Session, placement: Placement, at: str = "") -> None:
    """A placement's provider and mentors as Placements knows them: its copy, its own mentors."""
    if placement.provider_code is not None:
        code = placement.provider_code
        try:
            records.listed_provider(by_key(session, Provider, [code]), code, "provider_code")
        except HTTPException as error:
            raise records.unprocessable(at + str(error.detail)) from error
    placement.mentor_trns = sorted(set(placement.mentor_trns))
    mentors = session.exec(select(Mentor).where(col(Mentor.trn).in_(placement.mentor_trns)))
    members = {mentor.trn for mentor in mentors if placement.school_urn in mentor.school_urns}
    for trn in placement.mentor_trns:
        if trn not in members:
            raise records.unprocessable(
                f"{at}mentor_trns: {trn} is not a mentor at school {placement.school_urn}"
            )


def new_placements(
    session: Session, bodies: Sequence[PlacementCreate], now: datetime, *, numbered: bool
) -> list[Placement]:
    """Schools offer placements for this academic year or the next."""
    current = academic_year_of(now.date())
    schools = by_key(session, School, [body.school_urn for body in bodies])
    placements = []
    for index, body in enumerate(bodies):
        at = f"[{index}] " if numbered else ""
        year = current if body.academic_year is None else body.academic_year
        if year not in (current, current + 1):
            raise records.unprocessable(
                f"{at}academic_year: placements are offered for {academic_year_name(current)} "
                f"or {academic_year_name(current + 1)}, not {academic_year_name(year)}"
            )
        try:
            records.open_school(schools, body.school_urn, "school_urn")
        except HTTPException as error:
            raise records.unprocessable(at + str(error.detail)) from error
        placement = new_record(
            Placement,
            body,
            {"academic_year": year, "created_at": now},
            at=index if numbered else None,
        )
        check_placement(session, placement, at)
        placements.append(placement)
    add_new(session, placements)
    return placements


def new_partnerships(
    session: Session, bodies: Sequence[SchoolPartnershipCreate], now: datetime, *, numbered: bool
) -> list[SchoolPartnership]:
    schools = by_key(session, School, [body.school_urn for body in bodies])
    providers = by_key(session, Provider, [body.provider_code for body in bodies])
    partnerships = []
    for index, body in enumerate(bodies):
        try:
            records.open_school(schools, body.school_urn, "school_urn")
            records.listed_provider(providers, body.provider_code, "provider_code")
        except HTTPException as error:
            at = f"[{index}] " if numbered else ""
            raise records.unprocessable(at + str(error.detail)) from error
        partnerships.append(
            new_record(SchoolPartnership, body, {"created_at": now}, at=index if numbered else None)
        )
    add_new(session, partnerships)
    return partnerships


def read_school(urn: str, session: SessionDep) -> School:
    return records.read_school(session, School, urn)


def update_school(urn: str, body: SchoolUpdate, session: SessionDep) -> School:
    """The school's own say: its appetite to host, and whether it is onboarded."""
    return update_from(session, records.read_school(session, School, urn), body)


def mentors_placements(session: Session, trn: str, urn: str) -> str | None:
    placements = session.exec(select(Placement).where(Placement.school_urn == urn))
    if any(trn in placement.mentor_trns for placement in placements):
        return f"trn: {trn} mentors placements at school {urn}; take them off those first"
    return None


router = mentoring_router(
    "placements",
    school=School,
    mentor=Mentor,
    read_school=read_school,
    update_school=update_school,
    held=mentors_placements,
)


@router.get("/placements")
def list_placements(
    session: SessionDep,
    school_urn: Urn | None = None,
    provider_code: ProviderCode | None = None,
    academic_year: int | None = None,
    after: str | None = None,
    limit: Limit = 500,
) -> list[Placement]:
    query = select(Placement).order_by(col(Placement.id)).limit(limit)
    if school_urn is not None:
        query = query.where(Placement.school_urn == school_urn)
    if provider_code is not None:
        query = query.where(Placement.provider_code == provider_code)
    if academic_year is not None:
        query = query.where(Placement.academic_year == academic_year)
    if after is not None:
        query = query.where(col(Placement.id) > after)
    return list(session.exec(query))


@router.get("/placements/{id}")
def read_placement(id: str, session: SessionDep) -> Placement:
    return get_or_404(session, Placement, id, field="id", what="placement")


@router.post("/placements", status_code=201, dependencies=[ApiAuth])
def create_placement(body: PlacementCreate, session: SessionDep, clock: ClockDep) -> Placement:
    return new_placements(session, [body], clock.now(), numbered=False)[0]


@router.post("/placements/batch", status_code=201, dependencies=[ApiAuth])
def create_placements(
    body: list[PlacementCreate], session: SessionDep, clock: ClockDep
) -> list[Placement]:
    return new_placements(session, body, clock.now(), numbered=True)


@router.patch("/placements/{id}", dependencies=[ApiAuth])
def update_placement(id: str, body: PlacementUpdate, session: SessionDep) -> Placement:
    """Assign a provider, change mentors or terms; the school and academic year stay."""
    placement = get_or_404(session, Placement, id, field="id", what="placement")
    return update_from(session, placement, body, check=partial(check_placement, session))


@router.delete("/placements/{id}", status_code=204, dependencies=[ApiAuth])
def delete_placement(id: str, session: SessionDep) -> None:
    session.delete(get_or_404(session, Placement, id, field="id", what="placement"))
    session.flush()


@router.get("/partnerships")
def list_partnerships(
    session: SessionDep,
    school_urn: Urn | None = None,
    provider_code: ProviderCode | None = None,
) -> list[SchoolPartnership]:
    query = select(SchoolPartnership).order_by(col(SchoolPartnership.id))
    if school_urn is not None:
        query = query.where(SchoolPartnership.school_urn == school_urn)
    if provider_code is not None:
        query = query.where(SchoolPartnership.provider_code == provider_code)
    return list(session.exec(query))


@router.post("/partnerships", status_code=201, dependencies=[ApiAuth])
def create_partnership(
    body: SchoolPartnershipCreate, session: SessionDep, clock: ClockDep
) -> SchoolPartnership:
    return new_partnerships(session, [body], clock.now(), numbered=False)[0]


@router.post("/partnerships/batch", status_code=201, dependencies=[ApiAuth])
def create_partnerships(
    body: list[SchoolPartnershipCreate], session: SessionDep, clock: ClockDep
) -> list[SchoolPartnership]:
    return new_partnerships(session, body, clock.now(), numbered=True)


@router.delete("/partnerships/{id}", status_code=204, dependencies=[ApiAuth])
def delete_partnership(id: str, session: SessionDep) -> None:
    session.delete(get_or_404(session, SchoolPartnership, id, field="id", what="partnership"))
    session.flush()
