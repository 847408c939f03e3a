"""Course search, answered from Find's copies alone: it never asks Publish at request time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import String, cast, func, or_
from sqlmodel import col, select

from serviceline.deps import SessionDep
from services.find.models import CourseCopy, CourseResult, ProviderCopy, SearchResults, StudyMode

router = APIRouter(tags=["search"])


@router.get("/courses")
def list_courses(
    session: SessionDep,
    subject: Annotated[str | None, Query(description="a subject code, e.g. G1")] = None,
    provider: Annotated[str | None, Query(description="provider code or part of its name")] = None,
    location: Annotated[str | None, Query(description="postcode district or region")] = None,
    study_mode: StudyMode | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchResults:
    query = (
        select(CourseCopy, ProviderCopy)
        .join(ProviderCopy, col(ProviderCopy.code) == col(CourseCopy.provider_code), isouter=True)
        .where(CourseCopy.state == "published", col(CourseCopy.findable).is_(True))
    )
    if subject is not None:
        # JSON lists are compared as text so the same query runs on SQLite and PostgreSQL
        query = query.where(cast(col(CourseCopy.subject_codes), String).contains(f'"{subject}"'))
    if provider is not None:
        query = query.where(
            or_(
                col(CourseCopy.provider_code) == provider.upper(),
                func.lower(col(ProviderCopy.name)).contains(provider.lower()),
            )
        )
    if location is not None:
        text = location.strip().lower()
        query = query.where(
            or_(
                func.lower(col(ProviderCopy.postcode)).startswith(text),
                func.lower(col(ProviderCopy.region_code)) == text.replace(" ", "_"),
            )
        )
    if study_mode is not None:
        query = query.where(col(CourseCopy.study_mode).in_([study_mode, "both"]))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(CourseCopy.name), col(CourseCopy.uuid))
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return SearchResults(
        total=total,
        page=page,
        per_page=per_page,
        courses=[
            CourseResult(
                **course.model_dump(
                    include={
                        "uuid",
                        "code",
                        "name",
                        "provider_code",
                        "study_mode",
                        "qualifications",
                        "subject_codes",
                        "funding_type",
                        "start_date",
                    }
                ),
                provider_name=provider_copy.name if provider_copy else None,
                location=provider_copy.postcode if provider_copy else None,
            )
            for course, provider_copy in rows
        ],
    )
