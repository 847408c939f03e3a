"""Each kind of event, performed through its owner's own API."""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import httpx

from lines.becoming_a_teacher.seed import (
    COURSE_SUBJECTS,
    FIRST_NAMES,
    LAST_NAMES,
    PLACES,
    SEED_USER,
    schools,
)
from lines.becoming_a_teacher.workload.state import Course, LineState, Person, Pool
from serviceline.runtime.upstream import bearer

REGISTER_API = "/api/v2026.1"
SITE_CODES = "-" + string.ascii_uppercase + string.digits
COURSE_CODE = string.ascii_uppercase + string.digits
PHASES = ("1", "2", "3", "4", "7")
Body = dict[str, Any]


class Sender:
    """Requests to the owners, tallied by kind: a 4xx is a refusal, and so is an owner that is
    unavailable (503, or not answering: a study's outage), as its users would find it; any
    other 5xx is a broken line."""

    def __init__(self, clients: Mapping[str, httpx.AsyncClient], api_token: str) -> None:
        self.clients = clients
        self.headers = bearer(api_token)
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    async def send(
        self, kind: str, service: str, method: str, path: str, body: Any = None, events: int = 1
    ) -> httpx.Response | None:
        try:
            response = await self.clients[service].request(
                method, path, json=body, headers=self.headers, timeout=300
            )
        except httpx.TransportError:
            self.failures[kind] += events
            return None
        if response.is_client_error or _unavailable(response):
            self.failures[kind] += events
            return None
        response.raise_for_status()
        self.counts[kind] += events
        return response

    async def read(self, kind: str, service: str, path: str) -> Any:
        """What an event must look at first; None, and the event refused, if it cannot."""
        try:
            response = await self.clients[service].get(path, headers=self.headers, timeout=300)
        except httpx.TransportError:
            response = None
        if response is None or response.is_client_error or _unavailable(response):
            self.failures[kind] += 1
            return None
        response.raise_for_status()
        return response.json()

    def missed(self, kind: str) -> None:
        """An event with nothing to act on (no course to edit): refused before it is sent."""
        self.failures[kind] += 1

    async def batch(
        self, kind: str, service: str, path: str, bodies: list[Body], one: str | None = None
    ) -> list[Any]:
        """Many creations in one request; refused, each is sent alone so one bad one fails."""
        if not bodies:
            return []
        if len(bodies) > 1:
            try:
                response = await self.clients[service].post(
                    path, json=bodies, headers=self.headers, timeout=300
                )
            except httpx.TransportError:
                response = None
            if response is None or _unavailable(response):
                self.failures[kind] += len(bodies)
                return [None] * len(bodies)
            if response.is_server_error:
                response.raise_for_status()
            if response.is_success:
                self.counts[kind] += len(bodies)
                answer = response.json()
                return answer if isinstance(answer, list) else bodies
        single = one or path.removesuffix("/batch")
        made = []
        for body in bodies:
            answer = await self.send(kind, service, "POST", single, body)
            made.append(None if answer is None else answer.json() or body)
        return made


def _unavailable(response: httpx.Response) -> bool:
    return response.status_code == httpx.codes.SERVICE_UNAVAILABLE


Handler = Callable[[int, datetime], Awaitable[None]]


class Publish:
    def __init__(self, sender: Sender, state: LineState, rng: random.Random) -> None:
        self.sender, self.state, self.rng = sender, state, rng

    def handlers(self) -> dict[str, Handler]:
        return {
            "course_created": self.course_created,
            "course_edited": self.course_edited,
            "course_withdrawn": self.course_withdrawn,
            "draft_deleted": self.draft_deleted,
            "site_added": self.site_added,
            "site_edited": self.site_edited,
            "site_removed": self.site_removed,
            "provider_edited": self.provider_edited,
            "partnership_added": self.partnership_added,
            "partnership_removed": self.partnership_removed,
        }

    def _provider(self) -> str | None:
        codes = sorted(self.state.sites)
        return self.rng.choice(codes) if codes else None

    async def course_created(self, count: int, now: datetime) -> None:
        for _ in range(count):
            code = self._provider()
            sites = sorted(s["code"] for s in self.state.sites.get(code or "", {}).values())
            if code is None or not sites:
                self.sender.missed("course_created")
                continue
            body = self._course(code, sites, now)
            made = await self.sender.send(
                "course_created", "publish", "POST", f"/providers/{code}/courses", body
            )
            if made is not None:
                self._created(made.json())

    def _course(self, provider: str, sites: list[str], now: datetime) -> Body:
        rng = self.rng
        taken = self.state.course_codes.get(provider, set())
        code = ""
        while not code or code in taken:
            code = "".join(rng.choice(COURSE_CODE) for _ in range(4))
        subject, name, level, (age_min, age_max), _ = rng.choice(COURSE_SUBJECTS)
        details = self.state.providers[provider]
        accredited = details["accredited_body"]
        state = "draft" if rng.random() < 0.1 else "published"
        return {
            "code": code,
            "name": name,
            "accredited_provider_code": None
            if accredited
            else rng.choice(self._partners(provider)),
            "state": state,
            "findable": state == "published",
            "study_mode": rng.choice(("full_time", "full_time", "part_time", "both")),
            "level": level,
            "program_type": "higher_education_programme"
            if details["provider_type"] == "university"
            else "scitt_programme"
            if accredited
            else "school_direct_training_programme",
            "qualifications": ["qts", "pgce"],
            "subject_codes": [subject],
            "age_minimum": age_min,
            "age_maximum": age_max,
            "start_date": f"{now.year + 1}-09-01",
            "site_codes": sorted(rng.sample(sites, rng.randint(1, len(sites)))),
        }

    def _partners(self, provider: str) -> list[str]:
        """The accredited providers a training provider works with, or any if it has none."""
        partners = sorted({a for a, t in self.state.partnerships.values() if t == provider})
        return partners or self.state.accredited

    def _created(self, course: Body) -> None:
        self.state.add_course(
            course["uuid"],
            Course(
                course["provider_code"],
                course["code"],
                course["state"],
                course["study_mode"],
                course["site_codes"],
                course["name"],
            ),
        )
        (self.state.published if course["state"] == "published" else self.state.drafts).add(
            course["uuid"]
        )
        if course["state"] == "published":
            # Apply takes applications for it once its next copy brings it there
            self.state.open_courses.add(course["uuid"])

    async def course_edited(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            uuid = self.state.published.pick(self.rng)
            if uuid is None:
                self.sender.missed("course_edited")
                continue
            course = self.state.courses[uuid]
            change = self._edit(course)
            if await self.sender.send(
                "course_edited", "publish", "PATCH", f"/courses/{uuid}", change
            ):
                for name, value in change.items():
                    setattr(course, name, value)

    def _edit(self, course: Course) -> Body:
        what = self.rng.choice(("name", "site_codes", "study_mode"))
        sites = sorted(s["code"] for s in self.state.sites.get(course.provider, {}).values())
        if what == "site_codes" and sites:
            return {"site_codes": sorted(self.rng.sample(sites, self.rng.randint(1, len(sites))))}
        if what == "study_mode":
            modes = [m for m in ("full_time", "part_time", "both") if m != course.study_mode]
            return {"study_mode": self.rng.choice(modes)}
        suffix = " with SEND"
        name = course.name.removesuffix(suffix) if course.name.endswith(suffix) else course.name
        return {"name": name if name != course.name else f"{name}{suffix}"}

    async def course_withdrawn(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            uuid = self.state.published.pick(self.rng)
            if uuid is None:
                self.sender.missed("course_withdrawn")
                continue
            change = {"state": "withdrawn", "findable": False}
            if await self.sender.send(
                "course_withdrawn", "publish", "PATCH", f"/courses/{uuid}", change
            ):
                self.state.courses[uuid].state = "withdrawn"
                self.state.published.discard(uuid)
                self.state.open_courses.discard(uuid)

    async def draft_deleted(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            uuid = self.state.drafts.pick(self.rng)
            if uuid is None:
                self.sender.missed("draft_deleted")
                continue
            if await self.sender.send("draft_deleted", "publish", "DELETE", f"/courses/{uuid}"):
                self.state.drafts.discard(uuid)
                course = self.state.courses.pop(uuid)
                self.state.course_codes[course.provider].discard(course.code)

    async def site_added(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            code, urn = self._provider(), self.state.open_schools.pick(self.rng)
            if code is None or urn is None:
                self.sender.missed("site_added")
                continue
            used = {s["code"] for s in self.state.sites[code].values()}
            free = [c for c in SITE_CODES if c not in used]
            if not free:
                self.sender.missed("site_added")
                continue
            school = self.state.schools[urn]
            body = {
                "code": free[0],
                "name": school["name"],
                "street_address_1": school.get("street"),
                "city": school.get("town"),
                "postcode": school.get("postcode"),
                "urn": urn,
                "region_code": self.state.providers[code]["region_code"],
            }
            made = await self.sender.send(
                "site_added", "publish", "POST", f"/providers/{code}/sites", body
            )
            if made is not None:
                site = made.json()
                self.state.sites[code][site["uuid"]] = site

    def _site(self) -> dict[str, Any] | None:
        code = self._provider()
        if code is None or not self.state.sites[code]:
            return None
        return self.state.sites[code][self.rng.choice(sorted(self.state.sites[code]))]

    async def site_edited(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            site = self._site()
            if site is None:
                self.sender.missed("site_edited")
                continue
            change = {
                "street_address_1": f"{self.rng.randint(1, 200)} {self.rng.choice(PLACES)} Road"
            }
            await self.sender.send(
                "site_edited", "publish", "PATCH", f"/sites/{site['uuid']}", change
            )

    async def site_removed(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            unused = self._unused_sites()
            if not unused:
                self.sender.missed("site_removed")
                continue
            provider, uuid = self.rng.choice(unused)
            if await self.sender.send("site_removed", "publish", "DELETE", f"/sites/{uuid}"):
                del self.state.sites[provider][uuid]

    def _unused_sites(self) -> list[tuple[str, str]]:
        """Sites no course names: a provider removes a location once nothing runs there."""
        used = {(c.provider, s) for c in self.state.courses.values() for s in c.site_codes}
        return [
            (provider, uuid)
            for provider, sites in sorted(self.state.sites.items())
            for uuid, site in sorted(sites.items())
            if (provider, site["code"]) not in used and len(sites) > 1
        ]

    async def provider_edited(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            code = self._provider()
            if code is None:
                self.sender.missed("provider_edited")
                continue
            change = {"telephone": f"0{self.rng.randint(1_000_000_000, 1_999_999_999)}"}
            await self.sender.send(
                "provider_edited", "publish", "PATCH", f"/providers/{code}", change
            )

    async def partnership_added(self, count: int, _now: datetime) -> None:
        training = sorted(c for c, p in self.state.providers.items() if not p["accredited_body"])
        for _ in range(count):
            pair = self._new_pair(training)
            if pair is None:
                self.sender.missed("partnership_added")
                continue
            body = {"accredited_provider_code": pair[0], "training_provider_code": pair[1]}
            made = await self.sender.send(
                "partnership_added", "publish", "POST", "/partnerships", body
            )
            if made is not None:
                self.state.partnerships[made.json()["id"]] = pair
                self.state.partnership_ids.add(made.json()["id"])

    def _new_pair(self, training: list[str]) -> tuple[str, str] | None:
        """A training provider and an accredited one not yet partners: a few draws."""
        pairs = set(self.state.partnerships.values())
        for _ in range(10):
            if not training or not self.state.accredited:
                return None
            pair = (self.rng.choice(self.state.accredited), self.rng.choice(training))
            if pair not in pairs:
                return pair
        return None

    async def partnership_removed(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            id = self.state.partnership_ids.pick(self.rng)
            if id is None:
                self.sender.missed("partnership_removed")
                continue
            if await self.sender.send(
                "partnership_removed", "publish", "DELETE", f"/partnerships/{id}"
            ):
                self.state.partnership_ids.discard(id)
                del self.state.partnerships[id]


class Gias:
    def __init__(self, sender: Sender, state: LineState, rng: random.Random) -> None:
        self.sender, self.state, self.rng = sender, state, rng

    def handlers(self) -> dict[str, Handler]:
        return {
            "school_opened": self.school_opened,
            "school_closed": self.school_closed,
            "school_status_changed": self.school_status_changed,
            "school_phase_changed": self.school_phase_changed,
            "school_address_changed": self.school_address_changed,
        }

    async def school_opened(self, count: int, now: datetime) -> None:
        rows = []
        # new URNs follow the highest GIAS has given
        highest = max((int(u) for u in self.state.schools), default=150_000)
        for number, row in enumerate(schools(self.rng, count), start=highest + 1):
            urn = str(number)
            row.update(urn=urn, status_code="1", close_date=None, open_date=now.date().isoformat())
            self.state.schools[urn] = row
            rows.append(row)
        made = await self.sender.batch("school_opened", "gias", "/schools/batch", rows, "/schools")
        for row, answer in zip(rows, made, strict=True):
            if answer is None:
                del self.state.schools[row["urn"]]
            else:
                self.state.open_schools.add(row["urn"])

    async def _change(self, kind: str, urn: str, change: Body) -> bool:
        if await self.sender.send(kind, "gias", "PATCH", f"/schools/{urn}", change) is None:
            return False
        self.state.schools[urn].update(change)
        return True

    async def school_closed(self, count: int, now: datetime) -> None:
        for _ in range(count):
            urn = self.state.open_schools.pick(self.rng)
            if urn is None:
                self.sender.missed("school_closed")
                continue
            change = {"status_code": "2", "close_date": now.date().isoformat()}
            if await self._change("school_closed", urn, change):
                self.state.open_schools.discard(urn)

    async def school_status_changed(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            urn = self.state.open_schools.pick(self.rng)
            if urn is None:
                self.sender.missed("school_status_changed")
                continue
            status = "3" if self.state.schools[urn]["status_code"] == "1" else "1"
            await self._change("school_status_changed", urn, {"status_code": status})

    async def school_phase_changed(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            urn = self.state.open_schools.pick(self.rng)
            if urn is None:
                self.sender.missed("school_phase_changed")
                continue
            phases = [p for p in PHASES if p != self.state.schools[urn].get("phase_code")]
            await self._change("school_phase_changed", urn, {"phase_code": self.rng.choice(phases)})

    async def school_address_changed(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            urn = self.state.open_schools.pick(self.rng)
            if urn is None:
                self.sender.missed("school_address_changed")
                continue
            street = f"{self.rng.randint(1, 200)} {self.rng.choice(PLACES)} Road"
            await self._change("school_address_changed", urn, {"street": street})


def email(person: Person, number: int) -> str:
    return f"{person.first_name}.{person.last_name}.{number}@example.com".lower().replace("'", "")


def new_person(rng: random.Random) -> Person:
    born = datetime(1975, 1, 1).toordinal() + rng.randint(0, 10_000)
    return Person(
        rng.choice(FIRST_NAMES),
        rng.choice(LAST_NAMES),
        datetime.fromordinal(born).date().isoformat(),
    )


MANAGE_USER = {**SEED_USER, "full_name": "Admissions Tutor", "email": "admissions@example.org"}


class People:
    """Apply's candidates, Register's trainees and DQT's teachers."""

    def __init__(self, sender: Sender, state: LineState, rng: random.Random) -> None:
        self.sender, self.state, self.rng = sender, state, rng
        # the decisions that follow an application, for the driver to schedule
        self.submitted: list[tuple[str, str, datetime]] = []

    def handlers(self) -> dict[str, Handler]:
        return {
            "candidate_registered": self.candidate_registered,
            "application_submitted": self.application_submitted,
            "application_withdrawn": self.application_withdrawn,
            "trainee_updated": self.trainee_updated,
            "trainee_deferred": self.trainee_deferred,
            "trainee_withdrawn": self.trainee_withdrawn,
            "qts_recommended": self.qts_recommended,
            "teacher_name_changed": self.teacher_name_changed,
        }

    async def candidate_registered(self, count: int, _now: datetime) -> None:
        people = [new_person(self.rng) for _ in range(count)]
        bodies = [
            {"email": email(person, self.rng.randint(1, 10**9)), "postcode": "LS1 4AB"}
            for person in people
        ]
        made = await self.sender.batch("candidate_registered", "apply", "/candidates/batch", bodies)
        for person, candidate in zip(people, made, strict=True):
            if candidate is not None:
                self.state.candidates.add(candidate["id"])
                self.state.people[candidate["id"]] = person
                self.state.fresh.append(candidate["id"])

    def _choice(self) -> Body | None:
        state = self.state
        candidate = state.fresh.popleft() if state.fresh else state.candidates.pick(self.rng)
        uuid = state.open_courses.pick(self.rng)
        if candidate is None or uuid is None or (candidate, uuid) in state.applied:
            return None
        state.applied.add((candidate, uuid))
        course = state.courses[uuid]
        person = state.people.setdefault(candidate, new_person(self.rng))
        return {
            "id": f"{self.rng.getrandbits(40):010x}",
            "candidate_id": candidate,
            "course_uuid": uuid,
            "site_code": self.rng.choice(course.site_codes),
            "study_mode": "part_time" if course.study_mode == "part_time" else "full_time",
            "first_name": person.first_name,
            "last_name": person.last_name,
            "date_of_birth": person.date_of_birth,
            "personal_statement": "I want to teach.",
        }

    async def application_submitted(self, count: int, now: datetime) -> None:
        bodies = []
        for _ in range(count):
            body = self._choice()
            if body is None:
                self.sender.missed("application_submitted")
            else:
                bodies.append(body)
        made = await self.sender.batch(
            "application_submitted", "apply", "/applications/batch", bodies
        )
        for application in made:
            if application is not None:
                self.state.undecided.add(application["id"])
                self.submitted.append((application["id"], application["provider_code"], now))

    async def application_withdrawn(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            id = self.state.undecided.pick(self.rng)
            if id is None:
                self.sender.missed("application_withdrawn")
                continue
            self.state.undecided.discard(id)
            path = f"/applications/{id}/withdraw"
            await self.sender.send("application_withdrawn", "apply", "POST", path, {})

    async def _trainee(self, kind: str, path: str, body: Any, method: str = "POST") -> None:
        slug = self.state.trainees.pick(self.rng)
        if slug is None:
            self.sender.missed(kind)
            return
        if method == "POST":
            self.state.trainees.discard(slug)  # it leaves training, or is awarded
        await self.sender.send(kind, "register", method, path.format(slug=slug), body)

    async def trainee_updated(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            email = f"trainee.{self.rng.randint(1, 10**9)}@example.com"
            path = f"{REGISTER_API}/trainees/{{slug}}"
            await self._trainee("trainee_updated", path, {"data": {"email": email}}, "PUT")

    async def trainee_deferred(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            await self._trainee("trainee_deferred", "/trainees/{slug}/defer", {})

    async def trainee_withdrawn(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            body = {"reasons": ["Personal reasons"]}
            await self._trainee("trainee_withdrawn", "/trainees/{slug}/withdraw", body)

    async def qts_recommended(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            await self._trainee("qts_recommended", "/trainees/{slug}/recommend-for-award", {})

    async def teacher_name_changed(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            trn = self.state.teachers.pick(self.rng)
            if trn is None:
                self.sender.missed("teacher_name_changed")
                continue
            body = {"trn": trn, "firstName": self.rng.choice(FIRST_NAMES)}
            body["lastName"] = self.rng.choice(LAST_NAMES)
            path = "/v3/teachers/name-changes"
            await self.sender.send("teacher_name_changed", "dqt", "POST", path, body)


class Decisions:
    """What follows an application: Manage's decisions, the candidate's answer."""

    def __init__(self, sender: Sender, state: LineState) -> None:
        self.sender, self.state = sender, state

    async def decide(self, kind: str, id: str) -> bool:
        self.state.undecided.discard(id)
        path, body = {
            "offer_made": ("offer", {"conditions": ["DBS check"], "user": MANAGE_USER}),
            "application_rejected": (
                "reject",
                {"reason": "Not enough subject knowledge.", "user": MANAGE_USER},
            ),
            "conditions_met": ("confirm-conditions-met", {"user": MANAGE_USER}),
        }[kind]
        made = await self.sender.send(kind, "manage", "POST", f"/applications/{id}/{path}", body)
        return made is not None

    async def answer(self, kind: str, id: str, *, if_offered: bool) -> bool:
        """The candidate accepts or declines; after a record system's decision, only if it was
        an offer. Whether the offer was accepted."""
        self.state.undecided.discard(id)
        if if_offered:
            read = await self.sender.read(kind, "apply", f"/applications/{id}")
            if read is None or read["status"] != "offer":
                return False
        verb = "accept" if kind == "offer_accepted" else "decline"
        path = f"/applications/{id}/{verb}-offer"
        made = await self.sender.send(kind, "apply", "POST", path, {})
        return made is not None and kind == "offer_accepted"


class Mentoring:
    """Placements and Claims: mentors, placements, claims and the schools' own edits."""

    def __init__(self, sender: Sender, state: LineState, rng: random.Random) -> None:
        self.sender, self.state, self.rng = sender, state, rng

    def handlers(self) -> dict[str, Handler]:
        return {
            "placement_created": self.placement_created,
            "placements_mentor_added": self.mentor_added("placements"),
            "claims_mentor_added": self.mentor_added("claims"),
            "claim_submitted": self.claim_submitted,
            "placements_school_contact_edited": self.contact_edited("placements"),
            "claims_school_contact_edited": self.contact_edited("claims"),
        }

    def _school_mentors(self, service: str) -> tuple[str, list[str]] | None:
        urn = self.state.mentor_schools.get(service, Pool[str]()).pick(self.rng)
        if urn is None:
            return None
        return urn, self.state.school_mentors[service][urn]

    async def placement_created(self, count: int, _now: datetime) -> None:
        bodies = []
        for _ in range(count):
            found = self._school_mentors("placements")
            if found is None:
                self.sender.missed("placement_created")
                continue
            subject, _, level, _, _ = self.rng.choice(COURSE_SUBJECTS)
            bodies.append(
                {
                    "school_urn": found[0],
                    "subject_code": subject,
                    "year_group": "mixed_year_groups" if level == "primary" else None,
                    "terms": ["autumn", "spring"],
                    "mentor_trns": [self.rng.choice(found[1])],
                }
            )
        await self.sender.batch("placement_created", "placements", "/placements/batch", bodies)

    def mentor_added(self, service: str) -> Handler:
        kind = f"{service}_mentor_added"

        async def handle(count: int, _now: datetime) -> None:
            mentors = self.state.mentors.get(service, {})
            for _ in range(count):
                trn = self.state.teachers.pick(self.rng)
                urn = self.state.school_copies.get(service, Pool()).pick(self.rng)
                if trn is None or urn is None or urn in mentors.get(trn, []):
                    self.sender.missed(kind)
                    continue
                body = {
                    "trn": trn,
                    "date_of_birth": self.state.dates_of_birth[trn],
                    "school_urn": urn,
                }
                if await self.sender.send(kind, service, "POST", "/mentors", body):
                    self.state.add_mentor(service, trn, urn)

        return handle

    async def claim_submitted(self, count: int, _now: datetime) -> None:
        for _ in range(count):
            found = self._school_mentors("claims")
            if found is None or not self.state.accredited:
                self.sender.missed("claim_submitted")
                continue
            trainings = [
                {"mentor_trn": trn, "hours_completed": self.rng.randint(2, 6)}
                for trn in self.rng.sample(found[1], min(2, len(found[1])))
            ]
            body = {
                "school_urn": found[0],
                "provider_code": self.rng.choice(self.state.accredited),
                "mentor_trainings": trainings,
                "submitted_by": "head@example.org",
            }
            await self.sender.send("claim_submitted", "claims", "POST", "/claims", body)

    def contact_edited(self, service: str) -> Handler:
        kind = f"{service}_school_contact_edited"

        async def handle(count: int, _now: datetime) -> None:
            for _ in range(count):
                urn = self.state.school_copies.get(service, Pool()).pick(self.rng)
                if urn is None:
                    self.sender.missed(kind)
                    continue
                change = {"telephone": f"0{self.rng.randint(1_000_000_000, 1_999_999_999)}"}
                await self.sender.send(kind, service, "PATCH", f"/copies/school/{urn}", change)

        return handle
