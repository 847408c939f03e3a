"""What the workload knows of the line: read once through the owners' APIs, then kept up to date
from what its own events did."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from lines.becoming_a_teacher.workload.spec import Seeded

T = TypeVar("T")
PAGE = 5000


class Pool(Generic[T]):
    """Things to pick from at random, added and removed in O(1), in a reproducible order."""

    def __init__(self, items: Iterable[T] = ()) -> None:
        self.items: list[T] = []
        self.index: dict[T, int] = {}
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: object) -> bool:
        return item in self.index

    def add(self, item: T) -> None:
        if item not in self.index:
            self.index[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: T) -> None:
        at = self.index.pop(item, None)
        if at is None:
            return
        last = self.items.pop()
        if at < len(self.items):
            self.items[at] = last
            self.index[last] = at

    def pick(self, rng: random.Random) -> T | None:
        return rng.choice(self.items) if self.items else None


@dataclass
class Course:
    provider: str
    code: str
    state: str
    study_mode: str
    site_codes: list[str]
    name: str


@dataclass
class Person:
    first_name: str
    last_name: str
    date_of_birth: str


@dataclass
class LineState:
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    accredited: list[str] = field(default_factory=list)
    sites: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # provider, uuid
    courses: dict[str, Course] = field(default_factory=dict)
    course_codes: dict[str, set[str]] = field(default_factory=dict)  # by provider
    published: Pool[str] = field(default_factory=Pool)
    drafts: Pool[str] = field(default_factory=Pool)
    # courses Apply has copied and takes applications for
    open_courses: Pool[str] = field(default_factory=Pool)
    partnerships: dict[str, tuple[str, str]] = field(default_factory=dict)
    partnership_ids: Pool[str] = field(default_factory=Pool)
    schools: dict[str, dict[str, Any]] = field(default_factory=dict)
    open_schools: Pool[str] = field(default_factory=Pool)
    candidates: Pool[str] = field(default_factory=Pool)
    people: dict[str, Person] = field(default_factory=dict)  # by candidate id
    fresh: deque[str] = field(default_factory=deque)  # registered, yet to apply
    applied: set[tuple[str, str]] = field(default_factory=set)
    undecided: Pool[str] = field(default_factory=Pool)
    trainees: Pool[str] = field(default_factory=Pool)  # holding a TRN, in training
    trainees_read_on: Any = None
    teachers: Pool[str] = field(default_factory=Pool)
    dates_of_birth: dict[str, str] = field(default_factory=dict)
    mentors: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # service, trn, urns
    school_mentors: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # service, urn
    mentor_schools: dict[str, Pool[str]] = field(default_factory=dict)  # service, urns
    school_copies: dict[str, Pool[str]] = field(default_factory=dict)  # service, urns
    seeded: dict[Seeded, int] = field(default_factory=dict)

    def add_course(self, uuid: str, course: Course) -> None:
        self.courses[uuid] = course
        self.course_codes.setdefault(course.provider, set()).add(course.code)

    def add_mentor(self, service: str, trn: str, urn: str) -> None:
        self.mentors.setdefault(service, {}).setdefault(trn, []).append(urn)
        self.school_mentors.setdefault(service, {}).setdefault(urn, []).append(trn)
        self.mentor_schools.setdefault(service, Pool()).add(urn)


async def pages(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], rows: str, cursor: str
) -> AsyncIterator[dict[str, Any]]:
    """Every row of a kernel listing (/records, /copies), page by page."""
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if after is not None:
            params["after"] = after
        response = await client.get(path, params=params, headers=headers, timeout=300)
        response.raise_for_status()
        body = response.json()
        for row in body[rows]:
            yield row
        after = body[cursor]
        if after is None:
            return


async def records(
    client: httpx.AsyncClient, entity: str, headers: dict[str, str]
) -> AsyncIterator[dict[str, Any]]:
    async for row in pages(client, f"/records/{entity}", headers, "records", "next_after"):
        yield row
