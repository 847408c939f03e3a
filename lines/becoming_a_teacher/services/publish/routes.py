"""Publish's own write API: providers manage their courses, sites and partnerships."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.publish.models import (
    Course,
    CourseCreate,
    CourseUpdate,
    GiasSchool,
    Partnership,
    PartnershipCreate,
    Provider,
    ProviderCourseCreate,
    ProviderCreate,
    ProviderSiteCreate,
    ProviderUpdate,
    Site,
    SiteCreate,
    SiteUpdate,
    new_uuid,
)
from lines.becoming_a_teacher.services.publish.subjects import SUBJECT_CODES
from serviceline.owner.feed import add_new, new_record
from serviceline.runtime.crud import get_or_404, update_from
from serviceline.runtime.deps import ApiAuth, ClockDep, KernelDep, SessionDep
from serviceline.runtime.settings import ServiceSettings

router = APIRouter(tags=["publish"], dependencies=[ApiAuth])


def touch(session: Session, provider_code: str) -> None:
    """A provider's changed_at moves when its courses or sites change, as in the real Publish."""
    provider = get_or_404(session, Provider, provider_code, field="provider_code", what="provider")
    flag_modified(provider, "name")
    session.add(provider)


def touch_all(session: Session, provider_codes: Sequence[str]) -> None:
    """Touch each provider of a batch once, an unknown one refused by the first index naming it."""
    first: dict[str, int] = {}
    for index, code in enumerate(provider_codes):
        first.setdefault(code, index)
    for code, index in first.items():
        if session.get(Provider, code) is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"[{index}] provider_code: Publish has no provider {code!r}",
            )
        touch(session, code)


def sites_of(session: Session, provider_codes: Sequence[str]) -> dict[str, set[str]]:
    """The codes of each provider's sites, read once for a batch."""
    known: dict[str, set[str]] = {code: set() for code in provider_codes}
    query = select(Site.provider_code, Site.code).where(col(Site.provider_code).in_(known))
    for provider_code, code in session.exec(query):
        known[provider_code].add(code)
    return known


def check_course(
    session: Session,
    provider_code: str,
    course: CourseCreate | Course,
    known_sites: set[str] | None = None,
) -> None:
    if course.age_minimum > course.age_maximum:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "age_minimum: must not exceed age_maximum"
        )
    if course.accredited_provider_code is not None:
        accredited = session.get(Provider, course.accredited_provider_code)
        if accredited is None or not accredited.accredited_body:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"accredited_provider_code: {course.accredited_provider_code!r} is not an "
                "accredited provider",
            )
    unknown_subjects = sorted(set(course.subject_codes) - SUBJECT_CODES)
    if unknown_subjects:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"subject_codes: Publish knows no subjects {unknown_subjects}",
        )
    if course.site_codes:
        known = (
            sites_of(session, [provider_code])[provider_code]
            if known_sites is None
            else known_sites
        )
        unknown = sorted(set(course.site_codes) - known)
        if unknown:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"site_codes: provider {provider_code} has no sites {unknown}",
            )


def new_provider(
    body: ProviderCreate, settings: ServiceSettings, clock: ClockDep, at: int | None = None
) -> Provider:
    return new_record(
        Provider,
        body,
        {"recruitment_cycle_year": settings.recruitment_cycle_year, "created_at": clock.now()},
        at=at,
    )


@router.post("/providers", status_code=201)
def create_provider(
    body: ProviderCreate, session: SessionDep, kernel: KernelDep, clock: ClockDep
) -> Provider:
    provider = new_provider(body, kernel.settings, clock)
    session.add(provider)
    session.flush()
    return provider


@router.post("/providers/batch", status_code=201)
def create_providers(
    body: list[ProviderCreate], session: SessionDep, kernel: KernelDep, clock: ClockDep
) -> dict[str, int]:
    add_new(
        session,
        [
            new_provider(provider, kernel.settings, clock, index)
            for index, provider in enumerate(body)
        ],
    )
    return {"created": len(body)}


@router.patch("/providers/{code}")
def update_provider(code: str, body: ProviderUpdate, session: SessionDep) -> Provider:
    provider = get_or_404(session, Provider, code, field="provider_code", what="provider")
    return update_from(session, provider, body)


@router.post("/providers/{code}/sites", status_code=201)
def create_site(code: str, body: SiteCreate, session: SessionDep) -> Site:
    return create_sites(code, [body], session)[0]


def address_from_gias(session: Session, site: SiteCreate) -> dict[str, str | None]:
    """A site added as a school takes the address Publish's copy of GIAS holds for it.

    From then on the address is the site's own: Publish never refreshes it from GIAS.
    """
    given = (site.street_address_1, site.city, site.postcode)
    school = session.get(GiasSchool, site.urn) if site.urn else None
    if school is None or any(given):
        return {}
    return {"street_address_1": school.address1, "city": school.town, "postcode": school.postcode}


@router.post("/providers/{code}/sites/batch", status_code=201)
def create_sites(code: str, body: list[SiteCreate], session: SessionDep) -> list[Site]:
    touch(session, code)
    return add_sites(session, [(code, site) for site in body])


@router.post("/sites/batch", status_code=201)
def create_providers_sites(body: list[ProviderSiteCreate], session: SessionDep) -> dict[str, int]:
    """Many providers' sites at once: the seed's bulk write, not a real operation."""
    touch_all(session, [site.provider_code for site in body])
    add_sites(session, [(site.provider_code, site) for site in body])
    return {"created": len(body)}


def add_sites(session: Session, sites: Sequence[tuple[str, SiteCreate]]) -> list[Site]:
    records = [
        new_record(
            Site,
            site,
            {
                "provider_code": code,
                "uuid": site.uuid or new_uuid(),
                **address_from_gias(session, site),
            },
            at=index,
        )
        for index, (code, site) in enumerate(sites)
    ]
    add_new(session, records)
    return records


@router.patch("/sites/{uuid}")
def update_site(uuid: str, body: SiteUpdate, session: SessionDep) -> Site:
    site = get_or_404(session, Site, uuid, field="uuid", what="site")
    update_from(session, site, body)
    touch(session, site.provider_code)
    return site


@router.delete("/sites/{uuid}", status_code=204)
def delete_site(uuid: str, session: SessionDep) -> None:
    site = get_or_404(session, Site, uuid, field="uuid", what="site")
    touch(session, site.provider_code)
    session.delete(site)
    session.flush()


@router.post("/providers/{code}/courses", status_code=201)
def create_course(code: str, body: CourseCreate, session: SessionDep, clock: ClockDep) -> Course:
    return create_courses(code, [body], session, clock)[0]


@router.post("/providers/{code}/courses/batch", status_code=201)
def create_courses(
    code: str, body: list[CourseCreate], session: SessionDep, clock: ClockDep
) -> list[Course]:
    touch(session, code)
    return add_courses(session, clock, [(code, course) for course in body])


@router.post("/courses/batch", status_code=201)
def create_providers_courses(
    body: list[ProviderCourseCreate], session: SessionDep, clock: ClockDep
) -> dict[str, int]:
    """Many providers' courses at once: the seed's bulk write, not a real operation."""
    touch_all(session, [course.provider_code for course in body])
    add_courses(session, clock, [(course.provider_code, course) for course in body], numbered=True)
    return {"created": len(body)}


def add_courses(
    session: Session,
    clock: ClockDep,
    courses: Sequence[tuple[str, CourseCreate]],
    *,
    numbered: bool = False,
) -> list[Course]:
    known_sites = sites_of(session, [code for code, _ in courses])
    records = []
    for index, (code, course) in enumerate(courses):
        try:
            check_course(session, code, course, known_sites[code])
        except HTTPException as error:
            if not numbered:
                raise
            raise HTTPException(error.status_code, f"[{index}] {error.detail}") from error
        records.append(
            new_record(
                Course,
                course,
                {
                    "provider_code": code,
                    "uuid": course.uuid or new_uuid(),
                    "created_at": clock.now(),
                },
                at=index,
            )
        )
    add_new(session, records)
    return records


@router.patch("/courses/{uuid}")
def update_course(uuid: str, body: CourseUpdate, session: SessionDep) -> Course:
    course = get_or_404(session, Course, uuid, field="uuid", what="course")
    update_from(session, course, body, check=partial(check_course, session, course.provider_code))
    touch(session, course.provider_code)
    return course


@router.delete("/courses/{uuid}", status_code=204)
def delete_course(uuid: str, session: SessionDep) -> None:
    """A hard delete: consumers reading `updated_since` never hear of it."""
    course = get_or_404(session, Course, uuid, field="uuid", what="course")
    touch(session, course.provider_code)
    session.delete(course)
    session.flush()


@router.get("/partnerships")
def list_partnerships(
    session: SessionDep,
    accredited_provider_code: Annotated[
        str | None, Query(description="only the partnerships this provider accredits")
    ] = None,
) -> list[Partnership]:
    query = select(Partnership).order_by(col(Partnership.id))
    if accredited_provider_code is not None:
        query = query.where(Partnership.accredited_provider_code == accredited_provider_code)
    return list(session.exec(query))


@router.post("/partnerships", status_code=201)
def create_partnership(body: PartnershipCreate, session: SessionDep) -> Partnership:
    accredited = get_or_404(
        session, Provider, body.accredited_provider_code, field="provider_code", what="provider"
    )
    get_or_404(
        session, Provider, body.training_provider_code, field="provider_code", what="provider"
    )
    if not accredited.accredited_body:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"accredited_provider_code: {accredited.code} is not an accredited provider",
        )
    partnership = Partnership.model_validate(body)
    session.add(partnership)
    session.flush()
    return partnership


@router.delete("/partnerships/{id}", status_code=204)
def delete_partnership(id: str, session: SessionDep) -> None:
    partnership = get_or_404(session, Partnership, id, field="id", what="partnership")
    session.delete(partnership)
    session.flush()
