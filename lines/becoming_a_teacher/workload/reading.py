"""What the seeded line holds, read through each owner's own API."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import httpx

from lines.becoming_a_teacher.workload.spec import Seeded
from lines.becoming_a_teacher.workload.state import Course, LineState, Person, Pool, pages, records

LIVE = ("awaiting_provider_decision",)
MENTORING = ("placements", "claims")


async def read_line(
    clients: Mapping[str, httpx.AsyncClient], headers: dict[str, str], state: LineState
) -> None:
    if "gias" in clients:
        await read_schools(clients["gias"], headers, state)
    if "publish" in clients:
        await read_publish(clients["publish"], headers, state)
    if "apply" in clients:
        await read_apply(clients["apply"], headers, state)
    if "dqt" in clients:
        async for teacher in records(clients["dqt"], "teacher", headers):
            state.teachers.add(teacher["trn"])
            state.dates_of_birth[teacher["trn"]] = teacher["date_of_birth"]
    for service in (name for name in MENTORING if name in clients):
        await read_mentoring(service, clients[service], headers, state)
    state.seeded.update(
        {
            Seeded.SCHOOLS: len(state.schools),
            Seeded.PROVIDERS: len(state.providers),
            Seeded.COURSES: len(state.courses),
            Seeded.CANDIDATES: len(state.candidates),
            Seeded.TEACHERS: len(state.teachers),
            Seeded.MENTORS: len(state.mentors.get("placements", {})),
        }
    )


async def read_schools(gias: httpx.AsyncClient, headers: dict[str, str], state: LineState) -> None:
    async for school in records(gias, "school", headers):
        state.schools[school["urn"]] = school
        if school["status_code"] in ("1", "3"):
            state.open_schools.add(school["urn"])


async def read_publish(
    publish: httpx.AsyncClient, headers: dict[str, str], state: LineState
) -> None:
    async for provider in records(publish, "provider", headers):
        state.providers[provider["code"]] = provider
        state.sites[provider["code"]] = {}
    state.accredited = sorted(c for c, p in state.providers.items() if p["accredited_body"])
    async for site in records(publish, "site", headers):
        state.sites.setdefault(site["provider_code"], {})[site["uuid"]] = site
    async for row in records(publish, "course", headers):
        course = Course(
            row["provider_code"],
            row["code"],
            row["state"],
            row["study_mode"],
            row["site_codes"],
            row["name"],
        )
        state.add_course(row["uuid"], course)
        if course.state == "published":
            state.published.add(row["uuid"])
            if row["findable"] and course.site_codes:
                state.open_courses.add(row["uuid"])
        elif course.state == "draft":
            state.drafts.add(row["uuid"])
    async for partnership in records(publish, "partnership", headers):
        pair = (partnership["accredited_provider_code"], partnership["training_provider_code"])
        state.partnerships[partnership["id"]] = pair
        state.partnership_ids.add(partnership["id"])


async def read_apply(apply: httpx.AsyncClient, headers: dict[str, str], state: LineState) -> None:
    async for candidate in records(apply, "candidate", headers):
        state.candidates.add(candidate["id"])
    async for application in records(apply, "application", headers):
        candidate = application["candidate_id"]
        state.applied.add((candidate, application["course_uuid"]))
        state.people.setdefault(
            candidate,
            Person(
                application["first_name"],
                application["last_name"],
                application["date_of_birth"],
            ),
        )
        if application["status"] in LIVE:
            state.undecided.add(application["id"])


async def read_mentoring(
    service: str, client: httpx.AsyncClient, headers: dict[str, str], state: LineState
) -> None:
    async for mentor in records(client, "mentor", headers):
        for urn in mentor["school_urns"]:
            state.add_mentor(service, mentor["trn"], urn)
    copies = state.school_copies.setdefault(service, Pool())
    async for school in pages(client, "/copies/school", headers, "copies", "next_after"):
        copies.add(str(school["urn"]))


async def read_trainees(
    register: httpx.AsyncClient, headers: dict[str, str], state: LineState, now: datetime
) -> None:
    """Trainees holding a TRN, read again each simulated day: DQT's answers come on their own.
    While Register is unavailable (a study's outage) the day's list is yesterday's."""
    if state.trainees_read_on == now.date():
        return
    found: Pool[str] = Pool()
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"state": "trn_received", "limit": 5000}
        if after is not None:
            params["after"] = after
        try:
            response = await register.get("/trainees", params=params, headers=headers, timeout=300)
        except httpx.TransportError:
            return
        if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
            return
        response.raise_for_status()
        page = response.json()
        if not page:
            state.trainees, state.trainees_read_on = found, now.date()
            return
        for trainee in page:
            found.add(trainee["slug"])
        after = page[-1]["slug"]
