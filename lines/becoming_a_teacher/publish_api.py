"""Publish's Teacher Training Courses API v1 as its consumers read it: listed a cycle at a time,
or walked provider by provider, course by course, as Apply's sync walks it.

Apply's sync lists every provider changed in the last two hours, every ten minutes, and reads
each one's courses and their locations again: most of what a run asks, the run before it was
told. The simulation may skip a request whose answer it knows, by what Publish's routes read:
a provider's course list depends only on its courses; a course's locations only on that course
(its state, study mode, code and site codes) and on the provider's sites its site codes name.
Which codes those are the API does not say, and a site added with a code no site held when the
answer was read may be one, so a change to any of the provider's sites counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from serviceline.consumer.known_walks import KnownFromLog, bump
from serviceline.consumer.readers import Page, SourceRecord, Walked
from serviceline.runtime.upstream import Traffic, Upstream, charge, metered


def resource_record(resource: dict[str, Any], key_field: str, **extra: Any) -> SourceRecord:
    """A JSON:API resource of Publish's API v1 as a record: its attributes, its meta.version."""
    attributes = {**resource["attributes"], **extra}
    meta = resource.get("meta", {})
    version = meta.get("version")
    return SourceRecord(
        str(attributes[key_field]), version, attributes, traceparent=meta.get("traceparent")
    )


@dataclass
class PublishV1Reader:
    """Lists a cycle's providers or courses, or the subjects: 500 a page, following links.next."""

    upstream: Upstream
    entity: str
    key_field: str
    year: int
    page_size: int = 500

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        if self.entity == "subject":
            body = await self.upstream.get_json("/api/public/v1/subjects")
            yield Page([resource_record(r, self.key_field) for r in body["data"]])
            return
        path = {"provider": "providers", "course": "courses"}[self.entity]
        base = f"/api/public/v1/recruitment_cycles/{self.year}/{path}"
        params: dict[str, Any] | None = {"page[per_page]": self.page_size}
        if updated_since is not None and params is not None:
            params["filter[updated_since]"] = updated_since.isoformat()
        url: str | None = base
        while url is not None:
            body = await self.upstream.get_json(url, params)
            yield Page([resource_record(r, self.key_field) for r in body["data"]])
            url = body.get("links", {}).get("next")
            params = None  # links.next carries the query


@dataclass(frozen=True)
class Located:
    """A course's locations: its sites, as the provider's, and the request that read them."""

    records: list[SourceRecord]
    traffic: Traffic


# the attribute holding each resource's key in Publish's API v1
PUBLISH_V1_KEYS: Mapping[str, str] = MappingProxyType(
    {"provider": "code", "course": "uuid", "site": "uuid"}
)


@dataclass
class PublishV1ProviderTreeReader:
    """Apply's sync, request for request: changed providers, each one's courses, their locations.

    SyncAllProvidersAndCourses lists providers 500 a page by page number, `filter[updated_since]`
    as Ruby's Time#to_s; SyncCourses lists each provider's courses; SyncSites lists each course's
    locations with `include=location_status`, for every course but drafts and rolled-over ones.
    One walk reads all three; `pages` gives `entity`'s, counting every request to the run.
    """

    upstream: Upstream
    entity: str
    # each entity's key field in the API's attributes
    keys: Mapping[str, str]
    year: int
    page_size: int = 500
    fan_out: int = 8
    # SyncCourses' API_COURSE_DRAFT_STATES: such courses are neither copied nor their sites read
    unsynced_states: frozenset[str] = frozenset({"draft", "rolled_over"})
    entities: tuple[str, ...] = ("provider", "course", "site")
    # what earlier runs read of course lists and locations, where the simulation may take it again
    known: KnownSubtrees | None = None

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        # walking alone, it goes no deeper than its own entity: a site's, every level
        depth = self.entities.index(self.entity) + 1
        async for walked in self.walk(updated_since, self.entities[:depth]):
            charge(walked.traffic)
            if walked.entity == self.entity:
                yield walked.page

    async def walk(
        self, updated_since: datetime | None, entities: Collection[str]
    ) -> AsyncIterator[Walked]:
        if self.known is not None:
            await self.known.catch_up(self.upstream, self.entities)
        async for providers, traffic in self._providers(updated_since):
            yield Walked("provider", self._records(providers, "provider"), traffic)
            if "course" not in entities and "site" not in entities:
                continue
            codes = [provider["attributes"]["code"] for provider in providers]
            for start in range(0, len(codes), self.fan_out):
                batch = codes[start : start + self.fan_out]
                read = (self._provider(code, "site" in entities) for code in batch)
                for walked in await asyncio.gather(*read):
                    for page in walked:
                        yield page

    async def _providers(
        self, updated_since: datetime | None
    ) -> AsyncIterator[tuple[list[Any], Traffic]]:
        base = f"/api/public/v1/recruitment_cycles/{self.year}/providers"
        number, last = 0, False
        while not last:
            number += 1
            params: dict[str, Any] = {"page[page]": number, "page[per_page]": self.page_size}
            if updated_since is not None:
                moment = updated_since.astimezone(UTC)
                params["filter[updated_since]"] = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
            with metered() as traffic:
                body = await self.upstream.get_json(base, params)
            yield body["data"], traffic
            last = body.get("links", {}).get("next") is None

    async def _provider(self, code: str, sites: bool) -> list[Walked]:
        """The provider's courses, and the sites its synced courses list: one page of each."""
        listed = await self._courses(code)
        if not sites:
            return [listed]
        synced = [c for c in listed.page.records if c.fields["state"] not in self.unsynced_states]
        records: dict[str, SourceRecord] = {}
        spent = Traffic()
        for course in synced:
            located = await self._locations(code, course)
            spent.requests += located.traffic.requests
            spent.bytes += located.traffic.bytes
            for record in located.records:
                records[record.key] = record
        # the provider's sites its courses list: one it no longer lists leaves the copy
        page = Page(list(records.values()), partition=("provider_code", code))
        return [listed, Walked("site", page, spent)]

    async def _courses(self, code: str) -> Walked:
        known = None if self.known is None else self.known.listing(code)
        if known is not None:
            return known
        with metered() as spent:
            body = await self.upstream.get_json(
                self._courses_path(code), {"page[per_page]": self.page_size}
            )
        listed = Walked("course", self._records(body["data"], "course"), spent)
        if self.known is not None and body.get("links", {}).get("next") is None:
            self.known.remember_listing(code, listed)
        return listed

    async def _locations(self, code: str, course: SourceRecord) -> Located:
        known = None if self.known is None else self.known.locations(code, course.key)
        if known is not None:
            return known
        with metered() as spent:
            body = await self.upstream.get_json(
                f"{self._courses_path(code)}/{course.fields['code']}/locations",
                {"include": "location_status", "page[per_page]": self.page_size},
            )
        sites = [
            resource_record(site, self.keys["site"], provider_code=code) for site in body["data"]
        ]
        located = Located(sites, spent)
        if self.known is not None:
            self.known.remember_locations(code, course.key, located)
        return located

    def _courses_path(self, code: str) -> str:
        return f"/api/public/v1/recruitment_cycles/{self.year}/providers/{code}/courses"

    def _records(self, resources: list[Any], entity: str) -> Page:
        return Page([resource_record(r, self.keys[entity]) for r in resources])


@dataclass
class KnownSubtrees(KnownFromLog):
    """Course lists and locations as last read, and what the owner's log touched since."""

    # provider -> the head its course list was read at, and that page
    _listings: dict[str, tuple[int, Walked]] = field(default_factory=dict)
    # course -> the head its locations were read at, and them
    _locations: dict[str, tuple[int, Located]] = field(default_factory=dict)
    # the seq of the latest change to any course of a provider, to one course, to any site of a
    # provider
    _courses_of: dict[str, int] = field(default_factory=dict)
    _course: dict[str, int] = field(default_factory=dict)
    _sites_of: dict[str, int] = field(default_factory=dict)
    # (entity, key) -> provider: a deletion is logged without its record
    _providers_of: dict[tuple[str, str], str] = field(default_factory=dict)

    def listing(self, provider: str) -> Walked | None:
        """What asking for the provider's courses now would return, where that is known."""
        remembered = self._listings.get(provider)
        if self.head is None or remembered is None:
            return None
        read_at, walked = remembered
        return walked if self._courses_of.get(provider, -1) <= read_at else None

    def locations(self, provider: str, course: str) -> Located | None:
        """What asking for the course's locations now would return, where that is known."""
        remembered = self._locations.get(course)
        if self.head is None or remembered is None:
            return None
        read_at, located = remembered
        touched = max(self._course.get(course, -1), self._sites_of.get(provider, -1))
        return located if touched <= read_at else None

    def remember_listing(self, provider: str, walked: Walked) -> None:
        """A course list that named all the provider's courses: only then is a deleted one on it."""
        if self.head is None:
            self._listings.pop(provider, None)
            return
        self._listings[provider] = (self.head, walked)
        for record in walked.page.records:
            self._providers_of[("course", record.key)] = provider

    def remember_locations(self, provider: str, course: str, located: Located) -> None:
        if self.head is None:
            self._locations.pop(course, None)
            return
        self._locations[course] = (self.head, located)
        for record in located.records:
            self._providers_of[("site", record.key)] = provider

    def _holds_answers(self) -> bool:
        return bool(self._listings or self._locations)

    def _clear(self) -> None:
        self._listings.clear()
        self._locations.clear()
        self._courses_of.clear()
        self._course.clear()
        self._sites_of.clear()

    def _touch(self, entity: str, change: Mapping[str, Any]) -> None:
        key, seq, record = str(change["key"]), int(change["seq"]), change["record"]
        if entity == "provider":
            # no answer shows a provider's own fields; one gone is refused every question
            if record is None:
                bump(self._courses_of, key, seq)
                bump(self._sites_of, key, seq)
            return
        if entity == "course":
            bump(self._course, key, seq)
        provider = record.get("provider_code") if record is not None else None
        provider = provider or self._providers_of.get((entity, key))
        # a deleted course or site no remembered answer held changes none of them: one that
        # counted when an answer was read is on it, one made since was logged with its record
        if provider is None:
            return
        self._providers_of[(entity, key)] = provider
        bump(self._courses_of if entity == "course" else self._sites_of, provider, seq)
