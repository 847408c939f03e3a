"""How a consumer reads an owner: the kernel's feed and records, or an API its line declares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from serviceline.model.topology import Edge
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.upstream import Traffic, Upstream, UpstreamError

if TYPE_CHECKING:
    from serviceline.consumer.known_walks import KnownFromLog, KnownRecords


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


@dataclass(frozen=True)
class Walked:
    """One page of a walk over several entities: which entity, and the requests that read it."""

    entity: str
    page: Page
    traffic: Traffic


@runtime_checkable
class Walker(Protocol):
    """Reads several entities in one walk of an owner's API, each page for one of them."""

    entities: tuple[str, ...]

    def walk(
        self, updated_since: datetime | None, entities: Collection[str]
    ) -> AsyncIterator[Walked]: ...


@dataclass(frozen=True, kw_only=True)
class ReadContext:
    """What a reader of one edge is opened with."""

    edge: Edge
    upstream: Upstream
    # the field of the owner's records that holds each one's key
    key_field: str
    clock: SimulatedClock
    # the consumer's cycle year, for an API that lists a year at a time
    year: int
    page_size: int
    # the keys the consumer wants, for a reader that asks key by key
    wanted: Sequence[str] = ()
    # what earlier runs were answered, for a reader that remembers (`Reader.remembers`)
    known: KnownFromLog | None = None
    # each key's answer as last read, kept up by whoever may read the owner's log
    known_records: KnownRecords | None = None


def reader_for(context: ReadContext) -> SourceReader | KernelReader:
    opens = context.edge.reader.opens
    if opens is None:
        edge = context.edge
        return KernelReader(context.upstream, edge.entity, context.key_field, context.page_size)
    return opens(context)
