"""How a consumer reads an owner: the kernel feed, Publish's public API v1, GIAS's daily CSV."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from xml.etree import ElementTree

from serviceline.model.topology import Edge, Reader
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.upstream import Traffic, Upstream, UpstreamError, charge, metered

if TYPE_CHECKING:
    from serviceline.consumer.known_walks import KnownRecords, KnownSubtrees


@dataclass(frozen=True)
class SourceRecord:
    key: str
    version: int | None
    fields: dict[str, Any]
    deleted: bool = False
    # the W3C trace context of the write the owner made it in, where the owner serves it
    traceparent: str | None = None
    # a change from the owner's feed: where it stands in the owner's log, and when it was made
    seq: int | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Page:
    records: list[SourceRecord]
    # the page holds every current record whose consumer `field` has this value
    partition: tuple[str, str] | None = None
    head: int | None = None
    # how long after the run began the owner let this page be read (a rate-limited owner)
    delay: timedelta = timedelta(0)


@dataclass(frozen=True)
class FeedPage:
    changes: list[SourceRecord]
    cursor: int
    has_more: bool
    # the cursor it was read from: the page holds the changes after `since` up to `cursor`
    since: int


class CursorExpiredError(Exception):
    """The owner no longer holds the changes after this cursor: relist everything."""


class SourceReader(Protocol):
    def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]: ...


@dataclass
class KernelReader:
    upstream: Upstream
    entity: str
    key_field: str
    page_size: int = 500

    async def changes(self, since: int, wait: float = 0) -> FeedPage:
        params: dict[str, Any] = {"since": since, "limit": self.page_size}
        if wait:
            params["wait"] = wait
        try:
            body = await self.upstream.get_json(f"/feed/{self.entity}", params)
        except UpstreamError as error:
            if error.status == 410:
                raise CursorExpiredError(str(error)) from error
            raise
        changes = [
            SourceRecord(
                str(change["key"]),
                int(change["version"]),
                change["record"] or {},
                deleted=change["op"] == "delete",
                traceparent=change.get("traceparent"),
                seq=int(change["seq"]),
                changed_at=_moment(change.get("changed_at")),
            )
            for change in body["changes"]
        ]
        return FeedPage(changes, int(body["next"]), bool(body["has_more"]), since)

    async def follow(self, since: int, first: FeedPage | None = None) -> AsyncIterator[FeedPage]:
        """Every change after `since`, each page read from the cursor the one before ended at.

        `first`, a page already read from `since` (a long-poll's answer), is not asked again.
        """
        while True:
            page = (
                first if first is not None and first.since == since else await self.changes(since)
            )
            first = None
            yield page
            if not page.has_more:
                return
            since = page.cursor

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if after is not None:
                params["after"] = after
            if updated_since is not None:
                params["updated_since"] = updated_since.isoformat()
            body = await self.upstream.get_json(f"/records/{self.entity}", params)
            records = [
                SourceRecord(str(r[self.key_field]), int(r["version"]), r) for r in body["records"]
            ]
            yield Page(records, head=int(body["head"]))
            after = body["next_after"]
            if after is None:
                return


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


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
class Walked:
    """One page of a walk over several entities: which entity, and the requests that read it."""

    entity: str
    page: Page
    traffic: Traffic


@dataclass(frozen=True)
class Located:
    """A course's locations: its sites, as the provider's, and the request that read them."""

    records: list[SourceRecord]
    traffic: Traffic


@runtime_checkable
class Walker(Protocol):
    """Reads several entities in one walk of an owner's API, each page for one of them."""

    entities: tuple[str, ...]

    def walk(
        self, updated_since: datetime | None, entities: Collection[str]
    ) -> AsyncIterator[Walked]: ...


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
class EdubaseReader:
    """Downloads yesterday's edubasealldata<YYYYMMDD>.csv, as the real GIAS imports do."""

    upstream: Upstream
    clock: SimulatedClock
    key_column: str = "URN"
    page_size: int = 500

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        day = (self.clock.now() - timedelta(days=1)).strftime("%Y%m%d")
        response = await self.upstream.get(f"/edubase/downloads/public/edubasealldata{day}.csv")
        rows = csv.DictReader(io.StringIO(response.content.decode("windows-1252")))
        page: list[SourceRecord] = []
        for row in rows:
            fields = {name: (value if value != "" else None) for name, value in row.items()}
            page.append(SourceRecord(str(row[self.key_column]), None, fields))
            if len(page) == self.page_size:
                yield Page(page)
                page = []
        yield Page(page)


@dataclass
class ApplyRegisterApiReader:
    """Recruited applications as Register reads them: `changed_since`, paged by Total-Pages."""

    upstream: Upstream
    year: int

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        params: dict[str, Any] = {"recruitment_cycle_year": self.year}
        if updated_since is not None:
            params["changed_since"] = updated_since.isoformat()
        page, total = 1, 1
        while page <= total:
            response = await self.upstream.get(
                "/register-api/applications", {**params, "page": page}
            )
            total = int(response.headers.get("Total-Pages", "1"))
            records = [SourceRecord(str(r["id"]), None, r) for r in response.json()["data"]]
            yield Page(records)
            page += 1


@dataclass
class ApplyVendorApiReader:
    """A student record system polling `GET /api/v1/applications?since=` with its own token."""

    upstream: Upstream
    epoch: datetime

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        since = (updated_since or self.epoch).isoformat()
        body = await self.upstream.get_json("/api/v1/applications", {"since": since})
        yield Page([SourceRecord(str(r["id"]), None, r) for r in body["data"]])


@dataclass
class HesaCollectionReader:
    """HESA's ITT census: `<Student>` records changed since a date, as Register pulled them."""

    upstream: Upstream
    collection: str
    epoch: datetime
    page_size: int = 500

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        since = (updated_since or self.epoch).date().isoformat()
        response = await self.upstream.get(f"/apis/itt/1.1/CensusData/{self.collection}/{since}")
        students = ElementTree.fromstring(response.content).iter("Student")
        page: list[SourceRecord] = []
        for student in students:
            fields = {
                child.tag: None if (child.text or "").strip() in ("", "NULL") else child.text
                for child in student
                if len(child) == 0
            }
            page.append(SourceRecord(str(fields["F_HUSID"]), None, fields))
            if len(page) == self.page_size:
                yield Page(page)
                page = []
        yield Page(page)


@dataclass
class DqtTeacherReader:
    """One `GET /v3/teachers/{trn}` per wanted TRN, no more than the owner's rate limit allows."""

    upstream: Upstream
    trns: list[str]
    per_minute: int = 300
    fan_out: int = 10
    # each teacher's answer as last read, where the simulation may take it again
    known: KnownRecords | None = None

    async def pages(self, updated_since: datetime | None) -> AsyncIterator[Page]:
        for minute, start in enumerate(range(0, len(self.trns), self.per_minute)):
            batch = self.trns[start : start + self.per_minute]
            records: list[SourceRecord] = []
            for offset in range(0, len(batch), self.fan_out):
                found = await asyncio.gather(
                    *(self._teacher(trn) for trn in batch[offset : offset + self.fan_out])
                )
                records += [SourceRecord(str(t["trn"]), None, t) for t in found if t is not None]
            yield Page(records, delay=timedelta(minutes=minute))

    async def _teacher(self, trn: str) -> dict[str, Any] | None:
        if self.known is None:
            return await self._ask(trn)
        teacher: dict[str, Any] | None = await self.known.asked(trn, partial(self._ask, trn))
        return teacher

    async def _ask(self, trn: str) -> dict[str, Any] | None:
        try:
            teacher: dict[str, Any] = await self.upstream.get_json(f"/v3/teachers/{trn}")
        except UpstreamError as error:
            if error.status == 404:
                return None
            raise
        return teacher


def reader_for(
    edge: Edge,
    upstream: Upstream,
    key_field: str,
    clock: SimulatedClock,
    year: int,
    page_size: int,
    wanted: list[str] | None = None,
    known: KnownSubtrees | None = None,
    known_records: KnownRecords | None = None,
) -> SourceReader | KernelReader:
    # the start of the recruitment cycle: "everything" to an API that needs a since
    epoch = datetime(year - 1, 10, 1, tzinfo=UTC)
    match edge.reader:
        case Reader.PUBLISH_V1:
            return PublishV1Reader(upstream, edge.entity, key_field, year, page_size)
        case Reader.PUBLISH_V1_PROVIDER_TREE:
            keys = {**PUBLISH_V1_KEYS, edge.entity: key_field}
            return PublishV1ProviderTreeReader(
                upstream, edge.entity, keys, year, page_size, known=known
            )
        case Reader.EDUBASE_CSV:
            return EdubaseReader(upstream, clock, key_field, page_size)
        case Reader.APPLY_REGISTER_API:
            return ApplyRegisterApiReader(upstream, year)
        case Reader.APPLY_VENDOR_API:
            return ApplyVendorApiReader(upstream, epoch)
        case Reader.HESA_COLLECTION:
            return HesaCollectionReader(upstream, hesa_collection(year), epoch, page_size)
        case Reader.DQT_TEACHERS:
            return DqtTeacherReader(upstream, wanted or [], known=known_records)
        case Reader.KERNEL:
            return KernelReader(upstream, edge.entity, key_field, page_size)


def hesa_collection(year: int) -> str:
    """HESA's ITT collection reference for a recruitment cycle, e.g. C26053 for 2026/27."""
    return f"C{(year - 1) % 100:02d}053"
