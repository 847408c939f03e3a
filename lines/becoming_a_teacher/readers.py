"""How the line's services read each other's APIs, declared for the kernel to open: Publish's API
v1, GIAS's daily file, Apply's register and vendor APIs, HESA's census and DQT's teachers."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from xml.etree import ElementTree

from lines.becoming_a_teacher.publish_api import (
    PUBLISH_V1_KEYS,
    KnownSubtrees,
    PublishV1ProviderTreeReader,
    PublishV1Reader,
)
from serviceline.consumer.known_walks import KnownRecords
from serviceline.consumer.readers import Page, ReadContext, SourceRecord
from serviceline.model.topology import Mechanism, Reader
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.upstream import Upstream, UpstreamError


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


def hesa_collection(year: int) -> str:
    """HESA's ITT collection reference for a recruitment cycle, e.g. C26053 for 2026/27."""
    return f"C{(year - 1) % 100:02d}053"


def cycle_start(year: int) -> datetime:
    """The start of the recruitment cycle: "everything" to an API that needs a since."""
    return datetime(year - 1, 10, 1, tzinfo=UTC)


def _publish_v1(context: ReadContext) -> PublishV1Reader:
    edge = context.edge
    return PublishV1Reader(
        context.upstream, edge.entity, context.key_field, context.year, context.page_size
    )


def _provider_tree(context: ReadContext) -> PublishV1ProviderTreeReader:
    known = context.known
    assert known is None or isinstance(known, KnownSubtrees), "a tree walk remembers subtrees"
    keys = {**PUBLISH_V1_KEYS, context.edge.entity: context.key_field}
    return PublishV1ProviderTreeReader(
        context.upstream, context.edge.entity, keys, context.year, context.page_size, known=known
    )


def _edubase(context: ReadContext) -> EdubaseReader:
    return EdubaseReader(context.upstream, context.clock, context.key_field, context.page_size)


def _register_api(context: ReadContext) -> ApplyRegisterApiReader:
    return ApplyRegisterApiReader(context.upstream, context.year)


def _vendor_api(context: ReadContext) -> ApplyVendorApiReader:
    return ApplyVendorApiReader(context.upstream, cycle_start(context.year))


def _hesa(context: ReadContext) -> HesaCollectionReader:
    year = context.year
    return HesaCollectionReader(
        context.upstream, hesa_collection(year), cycle_start(year), context.page_size
    )


def _dqt(context: ReadContext) -> DqtTeacherReader:
    return DqtTeacherReader(context.upstream, list(context.wanted), known=context.known_records)


LISTED = frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT})
WHOLE = frozenset({Mechanism.SNAPSHOT})

PUBLISH_V1 = Reader(
    name="publish_v1",
    description="Teacher Training Courses API v1 (JSON:API)",
    mechanisms=LISTED,
    opens=_publish_v1,
    feed_alike=True,
)
PUBLISH_V1_PROVIDER_TREE = Reader(
    name="publish_v1_provider_tree",
    description="the same API walked provider by provider, course by course, as Apply's sync",
    mechanisms=LISTED,
    opens=_provider_tree,
    feed_alike=True,
    remembers=KnownSubtrees,
)
EDUBASE_CSV = Reader(
    name="edubase_csv",
    description="GIAS daily edubasealldata<YYYYMMDD>.csv",
    mechanisms=WHOLE,
    opens=_edubase,
    daily=True,
)
APPLY_REGISTER_API = Reader(
    name="apply_register_api",
    description="Apply's register-api: recruited applications",
    mechanisms=LISTED,
    opens=_register_api,
)
APPLY_VENDOR_API = Reader(
    name="apply_vendor_api",
    description="Apply's vendor API v1: GET /applications?since=",
    mechanisms=LISTED,
    opens=_vendor_api,
)
HESA_COLLECTION = Reader(
    name="hesa_collection",
    description="HESA ITT census XML, <Student> records",
    mechanisms=LISTED,
    opens=_hesa,
)
DQT_TEACHERS = Reader(
    name="dqt_teachers",
    description="DQT/TRS GET /v3/teachers/{trn}, one TRN at a time",
    mechanisms=WHOLE,
    opens=_dqt,
    by_key=True,
)
