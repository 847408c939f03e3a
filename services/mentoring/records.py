"""What both services do alike: find schools and providers in their copies, add mentors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from fastapi import HTTPException, status
from sqlmodel import Session, col, select

from serviceline.copies import ProviderCopyBase
from serviceline.crud import get_or_404
from serviceline.upstream import Upstream
from services.mentoring.dqt import teacher_names
from services.mentoring.models import MentorBase, MentorCreate, SchoolCopyBase, mentors_at

School = TypeVar("School", bound=SchoolCopyBase)
Provider = TypeVar("Provider", bound=ProviderCopyBase)
Mentor = TypeVar("Mentor", bound=MentorBase)

# DQT lookups in flight at once while a batch of mentors is checked
FAN_OUT = 10


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def open_school(session: Session, model: type[School], urn: str, field: str) -> School:
    """A school a request names: in the copy of GIAS, and still in GIAS's open English schools."""
    school = session.get(model, urn)
    if school is None:
        raise unprocessable(
            f"{field}: {urn} is not an open English school in this service's copy of GIAS "
            "(new schools arrive with the nightly 23:30 import)"
        )
    if school.source_deleted_at is not None:
        raise unprocessable(f"{field}: school {urn} has left GIAS's open English schools")
    return school


def listed_provider(session: Session, model: type[Provider], code: str, field: str) -> Provider:
    """A provider a request names: in the copy of Publish's providers, and still listed there."""
    provider = session.get(model, code)
    if provider is None or provider.source_deleted_at is not None:
        raise unprocessable(
            f"{field}: {code} is not a provider in this service's copy of Publish "
            "(providers arrive with the nightly 00:15 sync)"
        )
    return provider


def read_school(session: Session, model: type[School], urn: str) -> School:
    return get_or_404(
        session, model, urn, field="urn", what="school", hint="only open English schools are copied"
    )


def list_schools(
    session: Session, model: type[School], after: str | None, limit: int
) -> list[School]:
    query = select(model).order_by(col(model.urn)).limit(limit)
    if after is not None:
        query = query.where(col(model.urn) > after)
    return list(session.exec(query))


def list_mentors(
    session: Session, model: type[Mentor], school_urn: str | None, after: str | None, limit: int
) -> list[Mentor]:
    query = select(model).order_by(col(model.trn)).limit(limit)
    if school_urn is not None:
        query = query.where(mentors_at(model, school_urn))
    if after is not None:
        query = query.where(col(model.trn) > after)
    return list(session.exec(query))


async def add_mentors(
    session: Session,
    dqt: Upstream,
    model: type[Mentor],
    schools: type[SchoolCopyBase],
    bodies: Sequence[MentorCreate],
    *,
    numbered: bool,
) -> list[Mentor]:
    """Add each mentor to a school, named as DQT names them; a TRN already held gains a school."""

    def at(index: int) -> str:
        return f"[{index}] " if numbered else ""

    for index, body in enumerate(bodies):
        try:
            open_school(session, schools, body.school_urn, "school_urn")
        except HTTPException as error:
            raise unprocessable(at(index) + str(error.detail)) from error
    names: list[tuple[str, str]] = []
    for start in range(0, len(bodies), FAN_OUT):
        chunk = bodies[start : start + FAN_OUT]
        names += await asyncio.gather(
            *(teacher_names(dqt, body, at(start + n)) for n, body in enumerate(chunk))
        )
    trns = list({body.trn for body in bodies})
    held = {m.trn: m for m in session.exec(select(model).where(col(model.trn).in_(trns)))}
    added: dict[str, Mentor] = {}
    for index, (body, (first_name, last_name)) in enumerate(zip(bodies, names, strict=True)):
        mentor = held.get(body.trn) or model(
            trn=body.trn, first_name=first_name, last_name=last_name
        )
        if body.school_urn in mentor.school_urns:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{at(index)}school_urn: {body.trn} already mentors at school {body.school_urn}",
            )
        mentor.first_name, mentor.last_name = first_name, last_name
        mentor.school_urns = sorted([*mentor.school_urns, body.school_urn])
        held[body.trn] = added[body.trn] = mentor
        session.add(mentor)
    session.flush()
    return list(added.values())


def leave_school(session: Session, mentor: Mentor, urn: str) -> Mentor:
    """The mentor stops mentoring at one school; the record, keyed by TRN, stays."""
    if urn not in mentor.school_urns:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"urn: {mentor.trn} is not a mentor at school {urn}"
        )
    mentor.school_urns = [held for held in mentor.school_urns if held != urn]
    session.add(mentor)
    session.flush()
    return mentor
