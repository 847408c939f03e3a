"""The Teacher Training Courses API v1: read-only, no auth, JSON:API, as the real Publish serves."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlmodel import Session, col, func, or_, select

from lines.becoming_a_teacher.services.publish.models import Course, Provider, Site
from lines.becoming_a_teacher.services.publish.subjects import SUBJECTS
from serviceline.model.fields import most_pages
from serviceline.owner.feed import Owned
from serviceline.owner.positions import listing_order, positions_for
from serviceline.runtime.deps import KernelDep, SessionDep
from serviceline.telemetry.tracing import serve_contexts

router = APIRouter(prefix="/api/public/v1", tags=["public API v1"])

MAX_PER_PAGE = 500
Row = TypeVar("Row", Provider, Course)
Filter = Callable[[str], Any]
# Ruby's Time#to_s, as json_api_client sends a Time: "2026-10-04 22:00:00 UTC" or "... +0100"
RUBY_TIME = re.compile(
    r"^(?P<moment>\S+ \S+) (?:(?P<utc>UTC)|(?P<sign>[+-])(?P<hh>\d\d)(?P<mm>\d\d))$"
)
STATUS_TITLES = {400: "BAD REQUEST", 404: "NOT_FOUND"}
SUBJECT_AREAS = {
    "primary": ("PrimarySubject", "Primary"),
    "secondary": ("SecondarySubject", "Secondary"),
    "further_education": ("FurtherEducationSubject", "Further education"),
}


class ApiV1Error(Exception):
    """A refusal in the spec's error object, its detail opening with the parameter it names."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def api_v1_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiV1Error)
    title = STATUS_TITLES.get(error.status, "ERROR")
    body = {"errors": [{"status": error.status, "title": title, "detail": error.detail}]}
    return JSONResponse(body, status_code=error.status)


def add_error_handlers(app: FastAPI) -> None:
    """API v1 refusals in the spec's error objects; the rest of Publish keeps FastAPI's."""
    app.add_exception_handler(ApiV1Error, api_v1_error)


def parse_moment(text: str) -> datetime:
    """ISO 8601, or Ruby's Time#to_s as real clients send it; no offset means UTC."""
    text = text.strip()
    if match := RUBY_TIME.match(text):
        offset = "+00:00" if match["utc"] else f"{match['sign']}{match['hh']}:{match['mm']}"
        text = f"{match['moment']}{offset}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiV1Error(400, f"filter[updated_since]: {text!r} is not a time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _flag(name: str) -> Filter:
    return lambda value: col(getattr(Course, name)).is_(value.lower() == "true")


def _any_of(column: Any) -> Filter:
    return lambda value: col(column).in_(value.split(","))


def _study_type(value: str) -> Any:
    modes = set(value.split(","))
    if "full_time_or_part_time" in modes:
        modes |= {"full_time", "part_time"}
    return col(Course.study_mode).in_(
        [*modes, "both"] if modes & {"full_time", "part_time"} else []
    )


def _subjects(value: str) -> Any:
    return or_(*(col(Course.subject_codes).contains(f'"{code}"') for code in value.split(",")))


def _visa(value: str) -> Any:
    if value.lower() != "true":
        return True
    return or_(col(Course.can_sponsor_student_visa), col(Course.can_sponsor_skilled_worker_visa))


PROVIDER_FILTERS: Mapping[str, Filter] = {
    "provider_type": _any_of(Provider.provider_type),
    "region_code": _any_of(Provider.region_code),
    "is_accredited_body": lambda value: col(Provider.accredited_body).is_(value.lower() == "true"),
    "provider_name": lambda value: col(Provider.name).icontains(value),
}
COURSE_FILTERS: Mapping[str, Filter] = {
    "findable": _flag("findable"),
    "funding_type": _any_of(Course.funding_type),
    "study_type": _study_type,
    "subjects": _subjects,
    "degree_grade": _any_of(Course.degree_grade),
    "can_sponsor_visa": _visa,
}
# the field a list is scoped by within a cycle: a provider's courses
PARTITIONS: Mapping[type[Provider] | type[Course], str] = {Course: "provider_code"}
SORTS: Mapping[str, Mapping[str, Any]] = {
    "providers": {"name": col(Provider.name), "-name": col(Provider.name).desc()},
    "courses": {"name": col(Course.name), "-name": col(Course.name).desc()},
}


def current_cycle(kernel: KernelDep) -> int:
    """Any year answers with the current cycle: an unknown one falls back to it, as in the spec."""
    return kernel.settings.recruitment_cycle_year


CycleDep = Annotated[int, Depends(current_cycle)]


def included(request: Request, allowed: tuple[str, ...]) -> frozenset[str]:
    asked = frozenset(name for name in request.query_params.get("include", "").split(",") if name)
    if unknown := sorted(asked - set(allowed)):
        raise ApiV1Error(400, f"include: {unknown} is not one of {list(allowed)} here")
    return asked


def resource(
    kind: str, record: Owned, attributes: dict[str, Any], **relationships: dict[str, Any]
) -> dict[str, Any]:
    body = {
        "id": record.key,
        "type": kind,
        # the spec allows null in few attributes: an unknown value is left out, as JSON:API allows
        "attributes": {name: value for name, value in attributes.items() if value is not None},
        "meta": {"version": record.version},
    }
    if relationships:
        body["relationships"] = relationships
    return body


def _link(kind: str, key: str) -> dict[str, Any]:
    return {"data": {"type": kind, "id": key}}


def provider_resource(provider: Provider) -> dict[str, Any]:
    attributes = provider.model_dump(
        mode="json", exclude={"version", "updated_at", "recruitment_cycle_year"}
    )
    attributes["changed_at"] = _iso(provider.updated_at)
    attributes["created_at"] = _iso(provider.created_at)
    return resource("providers", provider, attributes)


def course_resource(course: Course) -> dict[str, Any]:
    attributes = course.model_dump(
        mode="json",
        exclude={"version", "updated_at", "site_codes", "visa_sponsorship_application_deadline_at"},
    )
    attributes["changed_at"] = _iso(course.updated_at)
    attributes["created_at"] = _iso(course.created_at)
    deadline = course.visa_sponsorship_application_deadline_at
    attributes["visa_sponsorship_application_deadline_at"] = _iso(deadline)
    # the real serializer serves the accredited provider under both names
    attributes["accredited_body_code"] = course.accredited_provider_code
    attributes["summary"] = summary(course)
    attributes["open_for_applications"] = course.state == "published"
    attributes["application_status"] = "open" if course.state == "published" else "closed"
    relationships = {"provider": _link("providers", course.provider_code)}
    if course.accredited_provider_code:
        relationships["accredited_body"] = _link("providers", course.accredited_provider_code)
    return resource("courses", course, attributes, **relationships)


def summary(course: Course) -> str:
    """What Publish's course decorator says, e.g. "QTS with PGCE full time or part time"."""
    award = " with ".join(q.upper() for q in course.qualifications)
    mode = {"both": "full time or part time"}.get(course.study_mode, course.study_mode)
    salaried = " salaried" if course.funding_type == "salary" else ""
    return f"{award} {mode.replace('_', ' ')}{salaried}"


def location_resource(site: Site, **relationships: dict[str, Any]) -> dict[str, Any]:
    attributes = site.model_dump(mode="json", exclude={"version", "updated_at", "provider_code"})
    return resource("locations", site, attributes, **relationships)


def location_status(course: Course, site: Site) -> dict[str, Any]:
    """The course at one school, as Publish's site_status: its status follows the course's."""
    status = {"published": "running", "withdrawn": "suspended"}.get(course.state, "new_status")
    vacancies = {"both": "both_full_time_and_part_time_vacancies"}.get(
        course.study_mode, f"{course.study_mode}_vacancies"
    )
    return {
        "id": f"{course.uuid}:{site.code}",
        "type": "location_statuses",
        "attributes": {
            "status": status,
            "publish": "published" if course.state == "published" else "unpublished",
            "has_vacancies": status == "running",
            "vacancy_status": vacancies,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def document(data: Any, links: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"data": data, "jsonapi": {"version": "1.0"}, **extra}
    if links:
        body["links"] = links
    return body


def with_included(data: Any, resources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    if resources:
        extra["included"] = list({(r["type"], r["id"]): r for r in resources}.values())
    return document(data, **extra)


def recruitment_cycle(year: int) -> dict[str, Any]:
    return {
        "id": str(year),
        "type": "recruitment_cycles",
        "attributes": {
            "year": year,
            "application_start_date": date(year - 1, 10, 1).isoformat(),
            "application_end_date": date(year, 9, 30).isoformat(),
        },
    }


@dataclass(frozen=True)
class Listing:
    """A list request of this cycle: its filters, sort and page, and its URL for links."""

    request: Request
    year: int
    page: int
    per_page: int
    engine: Engine
    # each resource's meta names the trace its version was written in
    # (serviceline.telemetry.tracing)
    traced: bool = False

    def answer(
        self,
        session: Session,
        model: type[Row],
        render: Callable[[Row], dict[str, Any]],
        scope: tuple[str, str] | None = None,
    ) -> tuple[list[Row], dict[str, Any]]:
        """The page, ordered by changed_at then key as the real `changed_since` scope orders.

        `scope` keeps the records whose field (a provider's courses: provider_code) has a value.
        """
        since, filters = self._filters(model)
        sort = self._sort(model)
        start = (self.page - 1) * self.per_page
        found = None
        partition = PARTITIONS.get(model)
        if not filters and not sort and (scope is None or scope[0] == partition):
            # what the real clients send: kept in order here, page N costs what page 1 does
            positions = positions_for(self.engine, model, partition)
            part = None if scope is None else scope[1]
            found = positions.page(
                self.engine, start, self.per_page, updated_since=since, part=part, session=session
            )
        if found is None:
            found = self._offset(session, model, start, since, filters, sort, scope)
        total, rows = found
        if self.page > max(1, -(-total // self.per_page)):
            raise ApiV1Error(400, f"page[page]: page {self.page} is past the last page")
        links = {}
        if self.page * self.per_page < total:
            query = {k: v for k, v in self.request.query_params.items() if k != "page[page]"}
            query["page[page]"] = str(self.page + 1)
            # absolute, as the real API gives it: real clients GET links.next as it stands
            links["next"] = str(self.request.url.replace(query=urlencode(query)))
        data = [render(row) for row in rows]
        if self.traced:
            serve_contexts(session, rows, data)
        return rows, document(data, links)

    def _offset(
        self,
        session: Session,
        model: type[Row],
        start: int,
        since: datetime | None,
        filters: list[Any],
        sort: list[Any],
        scope: tuple[str, str] | None,
    ) -> tuple[int, list[Row]]:
        """The page as the database finds it, stepping over every earlier row."""
        conditions = list(filters)
        if since is not None:
            conditions.append(col(model.updated_at) > since)
        if scope is not None:
            conditions.append(col(getattr(model, scope[0])) == scope[1])
        total = session.exec(select(func.count()).select_from(model).where(*conditions)).one()
        order = listing_order(model, session.get_bind().dialect.name)
        rows = session.exec(
            select(model)
            .where(*conditions)
            .order_by(*sort, *order)
            .offset(start)
            .limit(self.per_page)
        ).all()
        return total, list(rows)

    def _filters(self, model: type[Row]) -> tuple[datetime | None, list[Any]]:
        """The time of `filter[updated_since]`, and the conditions of every other filter."""
        known = PROVIDER_FILTERS if model is Provider else COURSE_FILTERS
        since, conditions = None, []
        for name, value in self.request.query_params.items():
            if not name.startswith("filter["):
                continue
            field = name.removeprefix("filter[").removesuffix("]")
            if field == "updated_since":
                since = parse_moment(value)
            elif field in known:
                conditions.append(known[field](value))
            else:
                raise ApiV1Error(400, f"{name}: not a filter this API serves ({sorted(known)})")
        return since, conditions

    def _sort(self, model: type[Row]) -> list[Any]:
        sorts = SORTS["providers" if model is Provider else "courses"]
        asked = [name for name in self.request.query_params.get("sort", "").split(",") if name]
        if unknown := [name for name in asked if name not in sorts]:
            raise ApiV1Error(400, f"sort: {unknown} is not one of {sorted(sorts)}")
        return [sorts[name] for name in asked]


def _number(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ApiV1Error(400, f"{name}: {text!r} is not a whole number from 1")
    return int(text)


def cycle_listing(request: Request, year: CycleDep, kernel: KernelDep) -> Listing:
    # the spec: a page size past 500 falls back to 500
    per_page = min(_number(request, "page[per_page]", 100), MAX_PER_PAGE)
    page = _number(request, "page[page]", 1)
    if page > most_pages(per_page):
        raise ApiV1Error(400, f"page[page]: {page} is past the last page")
    return Listing(request, year, page, per_page, kernel.engine, kernel.tracing is not None)


ListingDep = Annotated[Listing, Depends(cycle_listing)]


def _provider(session: Session, provider_code: str) -> Provider:
    provider = session.get(Provider, provider_code.upper())
    if provider is None:
        raise ApiV1Error(404, f"provider_code: no provider {provider_code!r}")
    return provider


def _course(session: Session, provider_code: str, course_code: str) -> Course:
    course = session.exec(
        select(Course).where(
            Course.provider_code == provider_code.upper(), Course.code == course_code.upper()
        )
    ).first()
    if course is None:
        raise ApiV1Error(404, f"course_code: no course {provider_code}/{course_code}")
    return course


def _providers_of(session: Session, codes: set[str]) -> list[dict[str, Any]]:
    if not codes:  # nothing included: an empty IN would still scan every provider
        return []
    rows = session.exec(select(Provider).where(col(Provider.code).in_(codes)))
    return [provider_resource(provider) for provider in rows]


def course_includes(
    session: Session, courses: list[Course], asked: frozenset[str], year: int
) -> list[dict[str, Any]]:
    codes: set[str] = set()
    if "provider" in asked:
        codes |= {course.provider_code for course in courses}
    if "accredited_provider" in asked:
        codes |= {c.accredited_provider_code for c in courses if c.accredited_provider_code}
    cycle = [recruitment_cycle(year)] if "recruitment_cycle" in asked else []
    return [*_providers_of(session, codes), *cycle]


COURSE_INCLUDES = ("accredited_provider", "provider", "recruitment_cycle")


@router.get("/recruitment_cycles/{year}/providers")
def list_providers(listing: ListingDep, session: SessionDep) -> dict[str, Any]:
    asked = included(listing.request, ("recruitment_cycle",))
    _, body = listing.answer(session, Provider, provider_resource)
    cycle = [recruitment_cycle(listing.year)] if asked else []
    return with_included(body["data"], cycle, **_links(body))


def _links(body: dict[str, Any]) -> dict[str, Any]:
    return {"links": body["links"]} if "links" in body else {}


@router.get("/recruitment_cycles/{year}/providers/{provider_code}")
def read_provider(
    provider_code: str, year: CycleDep, request: Request, session: SessionDep
) -> dict[str, Any]:
    asked = included(request, ("recruitment_cycle",))
    data = provider_resource(_provider(session, provider_code))
    return with_included(data, [recruitment_cycle(year)] if asked else [])


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/locations")
def list_provider_locations(
    provider_code: str, year: CycleDep, request: Request, session: SessionDep
) -> dict[str, Any]:
    asked = included(request, ("recruitment_cycle", "provider"))
    provider = _provider(session, provider_code)
    sites = session.exec(
        select(Site).where(Site.provider_code == provider.code).order_by(col(Site.code))
    )
    extra = [provider_resource(provider)] if "provider" in asked else []
    extra += [recruitment_cycle(year)] if "recruitment_cycle" in asked else []
    return with_included([location_resource(site) for site in sites], extra)


@router.get("/recruitment_cycles/{year}/courses")
def list_courses(listing: ListingDep, session: SessionDep) -> dict[str, Any]:
    asked = included(listing.request, COURSE_INCLUDES)
    courses, body = listing.answer(session, Course, course_resource)
    extra = course_includes(session, courses, asked, listing.year)
    return with_included(body["data"], extra, **_links(body))


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/courses")
def list_provider_courses(
    provider_code: str, listing: ListingDep, session: SessionDep
) -> dict[str, Any]:
    asked = included(listing.request, COURSE_INCLUDES)
    provider = _provider(session, provider_code)
    scope = ("provider_code", provider.code)
    courses, body = listing.answer(session, Course, course_resource, scope)
    extra = course_includes(session, courses, asked, listing.year)
    return with_included(body["data"], extra, **_links(body))


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/courses/{course_code}")
def read_course(
    provider_code: str, course_code: str, year: CycleDep, request: Request, session: SessionDep
) -> dict[str, Any]:
    asked = included(request, COURSE_INCLUDES)
    course = _course(session, provider_code, course_code)
    return with_included(course_resource(course), course_includes(session, [course], asked, year))


@router.get("/recruitment_cycles/{year}/providers/{provider_code}/courses/{course_code}/locations")
def list_course_locations(
    provider_code: str, course_code: str, year: CycleDep, request: Request, session: SessionDep
) -> dict[str, Any]:
    asked = included(request, ("recruitment_cycle", "provider", "course", "location_status"))
    course = _course(session, provider_code, course_code)
    sites = session.exec(
        select(Site)
        .where(Site.provider_code == course.provider_code, col(Site.code).in_(course.site_codes))
        .order_by(col(Site.code))
    ).all()
    data, extra = [], []
    for site in sites:
        status = location_status(course, site)
        relationships = {"course": _link("courses", course.uuid)}
        if "location_status" in asked:
            relationships["location_status"] = _link(status["type"], status["id"])
            extra.append(status)
        data.append(location_resource(site, **relationships))
    if "course" in asked:
        extra.append(course_resource(course))
    extra += course_includes(session, [course], asked & {"provider", "recruitment_cycle"}, year)
    return with_included(data, extra, meta={"has_course_schools": True})


@router.get("/subjects")
def list_subjects() -> dict[str, Any]:
    return document([_subject(code, name) for code, name, _ in SUBJECTS])


def _subject(code: str, name: str) -> dict[str, Any]:
    return {"id": code, "type": "subjects", "attributes": {"code": code, "name": name}}


@router.get("/subject_areas")
def list_subject_areas(request: Request) -> dict[str, Any]:
    asked = included(request, ("subjects",))
    areas = []
    for level, (typename, name) in SUBJECT_AREAS.items():
        members = [{"type": "subjects", "id": code} for code, _, lvl in SUBJECTS if lvl == level]
        areas.append(
            {
                "id": typename,
                "type": "subject_areas",
                "attributes": {"name": name, "typename": typename},
                "relationships": {"subjects": {"data": members}},
            }
        )
    subjects = [_subject(code, name) for code, name, _ in SUBJECTS] if asked else []
    return with_included(areas, subjects)


@router.get("/provider_suggestions")
def list_provider_suggestions(request: Request, session: SessionDep) -> dict[str, Any]:
    """Up to 10 providers with a findable course whose code or name holds `query`."""
    query = request.query_params.get("query")
    if query is None or len(query) < 3:
        raise ApiV1Error(400, "query: give at least 3 characters of a provider's name or code")
    findable = select(Course.provider_code).where(col(Course.findable))
    providers = session.exec(
        select(Provider)
        .where(
            col(Provider.code).in_(findable),
            or_(col(Provider.code).icontains(query), col(Provider.name).icontains(query)),
        )
        .order_by(col(Provider.name))
        .limit(10)
    )
    return document(
        [
            {
                "id": p.code,
                "type": "provider_suggestions",
                "attributes": {"code": p.code, "name": p.name},
            }
            for p in providers
        ]
    )
