"""Course search: from Find's copies, or, reading through, from Publish live on every search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import String, cast, func, or_
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from lines.becoming_a_teacher.publish_api import PublishV1Reader
from lines.becoming_a_teacher.services.find.models import (
    CourseCopy,
    CourseResult,
    ProviderCopy,
    SearchResults,
    StudyMode,
)
from lines.becoming_a_teacher.topology import LINE
from serviceline.model.fields import most_pages
from serviceline.runtime.deps import Kernel, KernelDep, SessionDep
from serviceline.runtime.upstream import UpstreamError

router = APIRouter(tags=["search"])

COURSES = LINE.edge("publish.course.find")
RESULT_FIELDS = {
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
Found = tuple[CourseCopy, ProviderCopy | None]


@dataclass(frozen=True)
class CourseSearch:
    """What a candidate searches for: the same test over copies in SQL or live courses here."""

    subject: Annotated[str | None, Query(description="a subject code, e.g. G1")] = None
    provider: Annotated[str | None, Query(description="provider code or part of its name")] = None
    location: Annotated[str | None, Query(description="postcode district or region")] = None
    study_mode: StudyMode | None = None
    page: Annotated[int, Query(ge=1, le=most_pages(100))] = 1
    per_page: Annotated[int, Query(ge=1, le=100)] = 20

    def where(self, query: Select[CourseCopy, ProviderCopy]) -> Select[CourseCopy, ProviderCopy]:
        query = query.where(CourseCopy.state == "published", col(CourseCopy.findable).is_(True))
        if self.subject is not None:
            # JSON lists are compared as text so the same query runs on SQLite and PostgreSQL
            subjects = cast(col(CourseCopy.subject_codes), String)
            query = query.where(subjects.contains(f'"{self.subject}"'))
        if self.provider is not None:
            query = query.where(
                or_(
                    col(CourseCopy.provider_code) == self.provider.upper(),
                    func.lower(col(ProviderCopy.name)).contains(self.provider.lower()),
                )
            )
        if self.location is not None:
            text = self.location.strip().lower()
            query = query.where(
                or_(
                    func.lower(col(ProviderCopy.postcode)).startswith(text),
                    func.lower(col(ProviderCopy.region_code)) == text.replace(" ", "_"),
                )
            )
        if self.study_mode is not None:
            query = query.where(col(CourseCopy.study_mode).in_([self.study_mode, "both"]))
        return query

    def admits(self, course: CourseCopy, provider: ProviderCopy | None) -> bool:
        if course.state != "published" or not course.findable:
            return False
        if self.subject is not None and self.subject not in course.subject_codes:
            return False
        name = (provider.name if provider else None) or ""
        if self.provider is not None and not (
            course.provider_code == self.provider.upper() or self.provider.lower() in name.lower()
        ):
            return False
        if self.location is not None:
            text = self.location.strip().lower()
            postcode = (provider.postcode if provider else None) or ""
            region = (provider.region_code if provider else None) or ""
            if not (postcode.lower().startswith(text) or region.lower() == text.replace(" ", "_")):
                return False
        return self.study_mode is None or course.study_mode in (self.study_mode, "both")

    def in_copies(self, session: Session) -> SearchResults:
        query = self.where(
            select(CourseCopy, ProviderCopy).join(
                ProviderCopy,
                col(ProviderCopy.code) == col(CourseCopy.provider_code),
                isouter=True,
            )
        )
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(CourseCopy.name), col(CourseCopy.uuid))
            .offset((self.page - 1) * self.per_page)
            .limit(self.per_page)
        ).all()
        return self.results(total, list(rows))

    def among(self, session: Session, courses: list[CourseCopy]) -> SearchResults:
        codes = {course.provider_code for course in courses}
        providers = {
            p.code: p
            for p in session.exec(select(ProviderCopy).where(col(ProviderCopy.code).in_(codes)))
        }
        found = [
            (course, providers.get(course.provider_code))
            for course in sorted(courses, key=lambda c: (c.name, c.uuid))
        ]
        found = [(course, provider) for course, provider in found if self.admits(course, provider)]
        start = (self.page - 1) * self.per_page
        return self.results(len(found), found[start : start + self.per_page])

    def results(self, total: int, rows: list[Found]) -> SearchResults:
        return SearchResults(
            total=total,
            page=self.page,
            per_page=self.per_page,
            courses=[
                CourseResult(
                    **course.model_dump(include=RESULT_FIELDS),
                    provider_name=provider.name if provider else None,
                    location=provider.postcode if provider else None,
                )
                for course, provider in rows
            ],
        )


SearchDep = Annotated[CourseSearch, Depends()]


async def live_courses(kernel: Kernel) -> list[CourseCopy]:
    """Every course Publish holds now, read from its API v1 as the copy's edge would read it."""
    reader = PublishV1Reader(
        kernel.upstreams["publish"],
        "course",
        "uuid",
        kernel.settings.recruitment_cycle_year,
        kernel.settings.page_size,
    )
    try:
        return [
            CourseCopy.model_validate(COURSES.translate(record.fields))
            async for page in reader.pages(None)
            for record in page.records
        ]
    except UpstreamError as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"Find reads courses live from Publish, which cannot answer now: {error}",
        ) from error


@router.get("/courses")
async def list_courses(search: SearchDep, kernel: KernelDep, session: SessionDep) -> SearchResults:
    if COURSES.entity in kernel.settings.reads_through():
        courses = await live_courses(kernel)
        return await to_thread.run_sync(search.among, session, courses)
    return await to_thread.run_sync(search.in_copies, session)
