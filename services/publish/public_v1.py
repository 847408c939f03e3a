"""The Teacher Training Courses API v1: read-only, no auth, JSON:API, as the real Publish serves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from sqlmodel import Session, col, func, select

from serviceline.crud import get_or_404
from serviceline.deps import KernelDep, SessionDep
from serviceline.feed import Owned
from serviceline.fields import UtcDateTime, most_pages
from services.publish.models import Course, Provider, Site
from services.publish.subjects import SUBJECTS

router = APIRouter(prefix="/api/public/v1", tags=["public API v1"])

MAX_PER_PAGE = 500
Year = Annotated[str, Path(description="the recruitment cycle's starting year, or 'current'")]
UpdatedSince = Annotated[UtcDateTime | None, Query(alias="filter[updated_since]")]
PageNumber = Annotated[int, Query(alias="page[page]", ge=1, le=most_pages(MAX_PER_PAGE))]
PerPage = Annotated[int, Query(alias="page[per_page]", ge=1, le=MAX_PER_PAGE)]
Row = TypeVar("Row", Provider, Course)


def check_year(year: str, kernel: KernelDep) -> int:
    cycle = kernel.settings.recruitment_cycle_year
    if year not in ("current", str(cycle)):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"year: this Publish serves recruitment cycle {cycle}"
        )
    return cycle


def resource(kind: str, record: Owned, attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record.key,
        "type": kind,
        # the spec allows null in few attributes: an unknown value is left out, as JSON:API allows
        "attributes": {name: value for name, value in attributes.items() if value is not None},
        "meta": {"version": record.version},
    }


def provider_resource(provider: Provider) -> dict[str, Any]:
    attributes = provider.model_dump(
        mode="json", exclude={"version", "updated_at", "recruitment_cycle_year"}
    )
    attributes["changed_at"] = _iso(provider.updated_at)
    attributes["created_at"] = _iso(provider.created_at)
    return resource("providers", provider, attributes)


def course_resource(course: Course) -> dict[str, Any]:
    attributes = course.model_dump(mode="json", exclude={"version", "updated_at", "site_codes"})
    attributes["changed_at"] = _iso(course.updated_at)
    attributes["created_at"] = _iso(course.created_at)
    attributes["open_for_applications"] = course.state == "published"
    attributes["application_status"] = "open" if course.state == "published" else "closed"
    return resource("courses", course, attributes)


def location_resource(site: Site) -> dict[str, Any]:
    attributes = site.model_dump(mode="json", exclude={"version", "updated_at", "provider_code"})
    return resource("locations", site, attributes)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def document(data: Any, links: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"data": data, "jsonapi": {"version": "1.0"}, **extra}
    if links:
        body["links"] = links
    return body


@dataclass(frozen=True)
class Listing:
    """A list request of this cycle: what changed since when, which page, and its URL for links."""

    request: Request
    updated_since: datetime | None
    page: int
    per_page: int

    def answer(
        self,
        session: Session,
        model: type[Row],
        render: Callable[[Row], dict[str, Any]],
        *conditions: Any,
    ) -> dict[str, Any]:
        """The page, ordered by changed_at then key as the real `changed_since` scope orders."""
        key = col(getattr(model, model.key_field))
        if self.updated_since is not None:
            conditions = (*conditions, col(model.updated_at) > self.updated_since)
        total = session.exec(select(func.count()).select_from(model).where(*conditions)).one()
        rows = session.exec(
            select(model)
            .where(*conditions)
            .order_by(col(model.updated_at), key)
            .offset((self.page - 1) * self.per_page)
            .limit(self.per_page)
        ).all()
        links = {}
        if self.page * self.per_page < total:
            query = {k: v for k, v in self.request.query_params.items() if k != "page[page]"}
            query["page[page]"] = str(self.page + 1)
            # absolute, as the real API gives it: real clients GET links.next as it stands
            links["next"] = str(self.request.url.replace(query=urlencode(query)))
        return document([render(row) for row in rows], links)


def cycle_listing(
    year: Year,
    request: Request,
    kernel: KernelDep,
    updated_since: UpdatedSince = None,
    page: PageNumber = 1,
    per_page: PerPage = 100,
) -> Listing:
    check_year(year, kernel)
    return Listing(request, updated_since, page, per_page)


# FastAPI calls this only once the query has validated: a bad page is still refused before a
# wrong year, as when each list handler checked the year itself
ListingDep = Annotated[Listing, Depends(cycle_listing)]


@router.get("/recruitment_cycles/{year}/providers")
def list_providers(listing: ListingDep, session: SessionDep) -> dict[str, Any]:
    return listing.answer(session, Provider, provider_resource)


@router.get("/recruitment_cycles/{year}/providers/{provider_code}")
def read_provider(
    year: Year, provider_code: str, kernel: KernelDep, session: SessionDep
) -> dict[str, Any]:
    check_year(year, kernel)
    provider = get_or_404(session, Provider, provider_code, field="provider_code", what="provider")
    return document(provider_resource(provider))


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/locations")
def list_provider_locations(
    year: Year, provider_code: str, kernel: KernelDep, session: SessionDep
) -> dict[str, Any]:
    check_year(year, kernel)
    get_or_404(session, Provider, provider_code, field="provider_code", what="provider")
    sites = session.exec(
        select(Site).where(Site.provider_code == provider_code).order_by(col(Site.code))
    )
    return document([location_resource(site) for site in sites])


@router.get("/recruitment_cycles/{year}/courses")
def list_courses(listing: ListingDep, session: SessionDep) -> dict[str, Any]:
    return listing.answer(session, Course, course_resource)


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/courses")
def list_provider_courses(
    provider_code: str, listing: ListingDep, session: SessionDep
) -> dict[str, Any]:
    get_or_404(session, Provider, provider_code, field="provider_code", what="provider")
    return listing.answer(session, Course, course_resource, Course.provider_code == provider_code)


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/courses/{course_code}")
def read_course(
    year: Year, provider_code: str, course_code: str, kernel: KernelDep, session: SessionDep
) -> dict[str, Any]:
    check_year(year, kernel)
    return document(course_resource(_course(session, provider_code, course_code)))


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/courses/{course_code}/locations")
def list_course_locations(
    year: Year, provider_code: str, course_code: str, kernel: KernelDep, session: SessionDep
) -> dict[str, Any]:
    check_year(year, kernel)
    course = _course(session, provider_code, course_code)
    sites = session.exec(
        select(Site).where(
            Site.provider_code == provider_code, col(Site.code).in_(course.site_codes)
        )
    )
    return document([location_resource(site) for site in sites])


@router.get("/subjects")
def list_subjects() -> dict[str, Any]:
    return document(
        [
            {
                "id": code,
                "type": "subjects",
                "attributes": {"code": code, "name": name},
            }
            for code, name, _ in SUBJECTS
        ]
    )


def _course(session: Session, provider_code: str, course_code: str) -> Course:
    course = session.exec(
        select(Course).where(Course.provider_code == provider_code, Course.code == course_code)
    ).first()
    if course is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"course_code: no course {provider_code}/{course_code}"
        )
    return course
