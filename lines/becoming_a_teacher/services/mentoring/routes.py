"""The school and mentor routes both mentor services serve, each over its own tables."""

from __future__ import annotations

from collections.abc import Callable
from types import GenericAlias
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlmodel import Session

from lines.becoming_a_teacher.identifiers import Urn
from lines.becoming_a_teacher.services.mentoring import records
from lines.becoming_a_teacher.services.mentoring.models import MentorCreate
from lines.becoming_a_teacher.services.mentoring.records import Mentor, School
from lines.becoming_a_teacher.topology import LINE
from serviceline.runtime.crud import get_or_404
from serviceline.runtime.deps import OWN_API, ApiAuth, SessionDep, UpstreamsDep, guard, personal

Limit = Annotated[int, Query(ge=1, le=5000)]
# why a mentor cannot leave a school, from the service's own records: None if they can
Held = Callable[[Session, str, str], str | None]


MentorReads = Depends(guard(personal("mentor", OWN_API, LINE)))


def mentoring_router(
    tag: str,
    *,
    school: type[School],
    mentor: type[Mentor],
    read_school: Callable[..., object],
    update_school: Callable[..., object],
    held: Held,
) -> APIRouter:
    """Schools from `school`, mentors in `mentor`; the service reads and edits a school itself."""
    router = APIRouter(tags=[tag])

    # the response models are the service's own tables, known only when the router is built
    @router.get("/schools", response_model=GenericAlias(list, (school,)))
    def list_schools(
        session: SessionDep, after: str | None = None, limit: Limit = 500
    ) -> list[School]:
        return records.list_schools(session, school, after, limit)

    router.get("/schools/{urn}")(read_school)
    router.patch("/schools/{urn}", dependencies=[ApiAuth])(update_school)

    @router.get(
        "/mentors", response_model=GenericAlias(list, (mentor,)), dependencies=[MentorReads]
    )
    def list_mentors(
        session: SessionDep,
        school_urn: Urn | None = None,
        after: str | None = None,
        limit: Limit = 500,
    ) -> list[Mentor]:
        return records.list_mentors(session, mentor, school_urn, after, limit)

    @router.get("/mentors/{trn}", response_model=mentor, dependencies=[MentorReads])
    def read_mentor(trn: str, session: SessionDep) -> Mentor:
        return get_or_404(session, mentor, trn, field="trn", what="mentor")

    @router.post("/mentors", status_code=201, response_model=mentor, dependencies=[ApiAuth])
    async def create_mentor(
        body: MentorCreate, session: SessionDep, upstreams: UpstreamsDep
    ) -> Mentor:
        """Add a mentor by TRN and date of birth, as DQT confirms them; an existing one joins."""
        added = await records.add_mentors(
            session, upstreams["dqt"], mentor, school, [body], numbered=False
        )
        return added[0]

    @router.post(
        "/mentors/batch",
        status_code=201,
        response_model=GenericAlias(list, (mentor,)),
        dependencies=[ApiAuth],
    )
    async def create_mentors(
        body: list[MentorCreate], session: SessionDep, upstreams: UpstreamsDep
    ) -> list[Mentor]:
        return await records.add_mentors(
            session, upstreams["dqt"], mentor, school, body, numbered=True
        )

    @router.delete("/mentors/{trn}/schools/{urn}", response_model=mentor, dependencies=[ApiAuth])
    def delete_mentor_membership(trn: str, urn: str, session: SessionDep) -> Mentor:
        found = get_or_404(session, mentor, trn, field="trn", what="mentor")
        reason = held(session, trn, urn)
        if reason is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, reason)
        return records.leave_school(session, found, urn)

    return router
