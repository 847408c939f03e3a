from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from sqlmodel import col, select

from lines.becoming_a_teacher.stubs.gias.models import (
    Extract,
    School,
    SchoolCreate,
    SchoolPublic,
    SchoolUpdate,
    StatusCode,
)
from serviceline.owner.feed import add_new, new_record
from serviceline.runtime.crud import get_or_404, update_from
from serviceline.runtime.deps import ApiAuth, SessionDep

router = APIRouter(tags=["schools"])
Day = Annotated[str, Path(pattern=r"^\d{8}$", description="YYYYMMDD")]


@router.get("/schools")
def list_schools(
    session: SessionDep,
    status_code: StatusCode | None = None,
    after: str | None = None,
    limit: int = Query(500, ge=1, le=5000),
) -> list[School]:
    query = select(School).order_by(col(School.urn)).limit(limit)
    if status_code is not None:
        query = query.where(School.status_code == status_code)
    if after is not None:
        query = query.where(col(School.urn) > after)
    return list(session.exec(query))


@router.get("/schools/{urn}", response_model=SchoolPublic)
def read_school(urn: str, session: SessionDep) -> School:
    return get_or_404(session, School, urn, field="urn", what="school with URN")


@router.post("/schools", status_code=201, response_model=SchoolPublic, dependencies=[ApiAuth])
def create_school(body: SchoolCreate, session: SessionDep) -> School:
    school = School.model_validate(body)
    session.add(school)
    session.flush()
    return school


@router.post("/schools/batch", status_code=201, dependencies=[ApiAuth])
def create_schools(body: list[SchoolCreate], session: SessionDep) -> dict[str, int]:
    add_new(session, [new_record(School, school, at=index) for index, school in enumerate(body)])
    return {"created": len(body)}


@router.patch("/schools/{urn}", response_model=SchoolPublic, dependencies=[ApiAuth])
def update_school(urn: str, body: SchoolUpdate, session: SessionDep) -> School:
    school = get_or_404(session, School, urn, field="urn", what="school with URN")
    return update_from(session, school, body)


@router.get("/edubase/downloads/public/edubasealldata{day}.csv")
def download_extract(day: Day, session: SessionDep) -> Response:
    try:
        wanted = datetime.strptime(day, "%Y%m%d").date()
    except ValueError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"day: {day} is not a date") from error
    extract = session.get(Extract, wanted)
    if extract is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no edubasealldata file has been published for {day}"
        )
    return Response(extract.content, media_type="text/csv; charset=windows-1252")
