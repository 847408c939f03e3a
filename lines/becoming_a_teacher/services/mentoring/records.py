"""What both services do alike: find schools and providers in their copies, add mentors."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from fastapi import HTTPException, status
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.mentoring.dqt import not_found, teacher_names
from lines.becoming_a_teacher.services.mentoring.models import (
    MentorBase,
    MentorCreate,
    SchoolCopyBase,
    mentors_at,
)
from lines.becoming_a_teacher.services.publish.copies import ProviderCopyBase
from serviceline.owner.feed import add_new, new_record
from serviceline.runtime.crud import by_key, get_or_404
from serviceline.runtime.upstream import Upstream

School = TypeVar("School", bound=SchoolCopyBase)
Provider = TypeVar("Provider", bound=ProviderCopyBase)
Mentor = TypeVar("Mentor", bound=MentorBase)


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def open_school(schools: Mapping[str, School], urn: str, field: str) -> School:
    """A school a request names: in the copy of GIAS, and still in GIAS's open English schools."""
    school = schools.get(urn)
    if school is None:
        raise unprocessable(
            f"{field}: {urn} is not an open English school in this service's copy of GIAS "
            "(new schools arrive with the nightly 23:30 import)"
        )
    if school.source_deleted_at is not None:
        raise unprocessable(f"{field}: school {urn} has left GIAS's open English schools")
    return school


def listed_provider(providers: Mapping[str, Provider], code: str, field: str) -> Provider:
    """A provider a request names: in the copy of Publish's providers, and still listed there."""
    provider = providers.get(code)
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


async def named_by_dqt(
    dqt: Upstream, bodies: Sequence[MentorCreate], at: Callable[[int], str]
) -> list[tuple[str, str]]:
    """Each mentor's names in DQT; the first mentor DQT does not find refuses them all."""
    found = await teacher_names(dqt, bodies)
    names = []
    for index, (body, name) in enumerate(zip(bodies, found, strict=True)):
        if name is None:
            raise unprocessable(at(index) + await not_found(dqt, body))
        names.append(name)
    return names


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

    copied = by_key(session, schools, [body.school_urn for body in bodies])
    for index, body in enumerate(bodies):
        try:
            open_school(copied, body.school_urn, "school_urn")
        except HTTPException as error:
            raise unprocessable(at(index) + str(error.detail)) from error
    names = await named_by_dqt(dqt, bodies, at)
    held = by_key(session, model, [body.trn for body in bodies])
    known = set(held)
    added: dict[str, Mentor] = {}
    for index, (body, name) in enumerate(zip(bodies, names, strict=True)):
        mentor = held.get(body.trn) or new_record(
            model, {"trn": body.trn, "first_name": name[0], "last_name": name[1]}
        )
        if body.school_urn in mentor.school_urns:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{at(index)}school_urn: {body.trn} already mentors at school {body.school_urn}",
            )
        mentor.first_name, mentor.last_name = name
        mentor.school_urns = sorted([*mentor.school_urns, body.school_urn])
        held[body.trn] = added[body.trn] = mentor
    # the mentors already held are in the session, changed: add_new's flush stores them too
    add_new(session, [mentor for trn, mentor in added.items() if trn not in known])
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
