"""The drift auditor: each copy beside its owner's records, over the services' APIs only."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from serviceline.audit import checksums
from serviceline.audit.comparisons import compare, listed
from serviceline.audit.findings import CLASSES, Comparison, Difference, KeyDrift, alike
from serviceline.consumer.known_walks import KnownFromLog, KnownRecords
from serviceline.consumer.readers import KernelReader, ReadContext, SourceRecord, reader_for
from serviceline.model.credentials import AUDIT_FOR
from serviceline.model.topology import (
    KERNEL_READER,
    Edge,
    Listing,
    Lookup,
    Mechanism,
    RecordCheck,
    Topology,
)
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.settings import ClockMode
from serviceline.runtime.upstream import Upstream, UpstreamError, bearer

# where an owner's record says when it last changed, in the shapes its readers return
CHANGED_AT = ("updated_at", "changed_at", "attributes.updated_at", "LastChangedDate")


@dataclass(frozen=True)
class Lag:
    changes: int
    oldest_at: datetime | None
    oldest_age_seconds: float | None
    # copies behind their owner's version though no copied field changed: in sync, not drift
    unchanged_versions: int = 0

    def at(self, now: datetime) -> Lag:
        """The same changes waiting, their oldest as old as it is at `now`."""
        if self.oldest_at is None:
            return self
        return replace(self, oldest_age_seconds=max((now - self.oldest_at).total_seconds(), 0.0))


@dataclass(frozen=True)
class PendingRetry:
    """A copy job that failed and waits to be tried again, with back-off, on the clock."""

    job: str
    failures: int
    due_at: datetime
    retries_left: int

    def describe(self) -> str:
        return f"{self.failures} failed, next {self.due_at.isoformat()} ({self.retries_left} left)"


@dataclass
class EdgeDrift:
    edge: str
    owner: str
    consumer: str
    entity: str
    mechanism: str
    counts: dict[str, int]
    keys: list[KeyDrift]  # every key not in sync
    lag: Lag | None  # None: an event-driven edge has no schedule to lag behind
    last_sync_at: datetime | None = None
    last_run_at: datetime | None = None  # the last run that succeeded, quiet or not
    last_change_at: datetime | None = None  # the last change a run applied to the copy
    lost_local_edits: int | None = None
    withheld_owner_changes: int | None = None
    method: str = "full"  # "bisect": by range checksums, fetching only the keys that differ
    fallback: str | None = None  # why a bisect audit listed everything instead
    retry: PendingRetry | None = None


@dataclass
class DriftReport:
    at: datetime
    edges: list[EdgeDrift]
    comparisons: list[Comparison]
    skipped: list[dict[str, str]]

    def items(self) -> list[EdgeDrift | Comparison]:
        return [*self.edges, *self.comparisons]

    def totals(self) -> dict[str, int]:
        totals = dict.fromkeys(CLASSES, 0)
        for item in self.items():
            for name, count in item.counts.items():
                totals[name] += count
        return totals

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(asdict(self), default=_iso))
        return body


def _pending_retry(edge: Edge, jobs: list[dict[str, Any]]) -> PendingRetry | None:
    """The edge's soonest pending retry: of its incremental job or its full sync."""
    pending = [
        PendingRetry(
            job["name"],
            job["failures"],
            datetime.fromisoformat(job["retry_due_at"]),
            job["retries_left"],
        )
        for job in jobs
        if job["name"] in (edge.name, f"{edge.name}:full") and job["retry_due_at"]
    ]
    return min(pending, key=lambda retry: retry.due_at, default=None)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class ReadingUpstream(Upstream):
    """An owner read as one consumer reads it (or as the auditor, given none), with the
    auditor's token, over a shared client."""

    def __init__(
        self, name: str, client: httpx.AsyncClient, token: str, consumer: str | None
    ) -> None:
        super().__init__(name, client)
        # the owner grants and scopes the read as the consumer's; the auditor's token writes none
        self.headers = bearer(token)
        if consumer is not None:
            self.headers[AUDIT_FOR] = consumer

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self.client.get(path, params=params, headers=self.headers)
        except httpx.TransportError as error:
            raise UpstreamError(self.name, 503, f"unreachable: {error!r}") from error
        if response.status_code >= 400:
            raise UpstreamError(self.name, response.status_code, response.text[:500])
        return response


def changed_at(record: Mapping[str, Any]) -> datetime | None:
    """When the owner says its record last changed, if the reader's shape says so."""
    for name in CHANGED_AT:
        value: Any = record
        for part in name.split(".") if name not in record else [name]:
            value = value.get(part) if isinstance(value, Mapping) else None
        if not value:
            continue
        for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%d-%m-%Y")):
            try:
                moment = parse(str(value))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def classify(
    edge: Edge,
    records: Sequence[SourceRecord],
    copies: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> tuple[list[KeyDrift], dict[str, int], Lag]:
    """Each key of the owner's listing and of the consumer's copies, through the edge."""
    in_scope: dict[str, tuple[SourceRecord, dict[str, Any]]] = {}
    out_of_scope: dict[str, SourceRecord] = {}
    for record in records:
        projected = edge.translate(record.fields)
        key = str(projected[edge.key_field])
        if record.deleted or not edge.scope.admits(record.fields):
            out_of_scope[key] = record
        else:
            in_scope[key] = (record, projected)
    columns = [c for c in edge.mapping.values() if c != edge.key_field]
    counts = dict.fromkeys(CLASSES, 0)
    drifted: list[KeyDrift] = []
    changes = unchanged = 0
    oldest: datetime | None = None

    def behind(count: int, since: datetime | None) -> None:
        nonlocal changes, oldest
        changes += count
        if since is not None and (oldest is None or since < oldest):
            oldest = since

    for key in sorted(set(in_scope) | set(copies)):
        copy = copies.get(key)
        owned = in_scope.get(key)
        if owned is None:
            assert copy is not None
            gone = out_of_scope.get(key)
            if copy.get("source_deleted_at") is None:
                behind(1, changed_at(gone.fields) if gone else None)
            drift = KeyDrift(key, "orphaned")
        elif copy is None:
            behind(1, changed_at(owned[0].fields))
            drift = KeyDrift(key, "missing")
        else:
            record, projected = owned
            differences = [
                Difference(c, {edge.owner: projected[c], edge.consumer: copy.get(c)})
                for c in columns
                if not alike(projected[c], copy.get(c))
            ]
            edited = set(copy.get("local_edits") or [])
            newer = (
                record.version is not None
                and copy.get("source_version") is not None
                and record.version > int(copy["source_version"])
            )
            if any(d.field in edited for d in differences):
                drift = KeyDrift(key, "diverged", differences)
            elif differences or copy.get("source_deleted_at") is not None:
                versions = (record.version or 0) - int(copy.get("source_version") or 0)
                behind(max(versions, 1), changed_at(record.fields))
                drift = KeyDrift(key, "stale", differences)
            else:
                unchanged += newer  # the owner moved fields this edge does not copy
                drift = KeyDrift(key, "in_sync")
        counts[drift.drift] += 1
        if drift.drift != "in_sync":
            drifted.append(drift)
    age = None if oldest is None else max((now - oldest).total_seconds(), 0.0)
    return drifted, counts, Lag(changes, oldest, age, unchanged)


Marks = tuple[str, str, date]


@dataclass(frozen=True)
class Audited:
    """An edge's audit, with what both sides had written and the day it was made on."""

    marks: Marks
    keys: list[KeyDrift]
    counts: dict[str, int]
    lag: Lag
    method: str
    fallback: str | None


@dataclass(kw_only=True)
class Auditor:
    """Reads owners as their consumers do and copies as their consumers serve them."""

    clients: Mapping[str, httpx.AsyncClient]
    # the auditor's read token: every service accepts it on reads, none on writes
    token: str
    topology: Topology
    page_size: int = 500
    fan_out: int = 10
    bisect: bool = False
    # keep each edge's audit and give it again while neither side has written since, on the
    # same simulated day (a daily file's reader reads another file the next day)
    remember: bool = False
    _remembered: dict[str, Audited] = field(default_factory=dict, init=False, repr=False)
    # with `remember`, what tree walks of owners read, taken again while their logs allow
    _known: dict[str, KnownFromLog] = field(default_factory=dict, init=False, repr=False)
    # with `remember`, what owners answered of one record at a time, likewise
    _known_records: dict[str, KnownRecords] = field(default_factory=dict, init=False, repr=False)

    async def audit(self, edges: Sequence[Edge] | None = None) -> DriftReport:
        chosen = list(edges) if edges is not None else list(self.topology.edges)
        now = await self._now()
        report = DriftReport(now, [], [], [])
        for edge in chosen:
            absent = [s for s in (edge.owner, edge.consumer) if s not in self.clients]
            if absent:
                report.skipped.append({"edge": edge.name, "reason": f"{absent[0]} is not running"})
                continue
            report.edges.append(await self.edge(edge))
        if edges is None:
            report.comparisons = await self.comparisons()
        return report

    async def edge(self, edge: Edge) -> EdgeDrift:
        clock = await self._admin(edge.consumer, "/admin/clock")
        now = datetime.fromisoformat(clock["now"])
        marks = await self._marks(edge, clock, now) if self.remember else None
        found = self._remembered.get(edge.name)
        if marks is None or found is None or found.marks != marks:
            found = await self._audited(edge, now, marks)
            if marks is not None:
                self._remembered[edge.name] = found
        keys, counts, lag = found.keys, dict(found.counts), found.lag.at(now)
        views = await self._admin(edge.consumer, "/admin/edges")
        view: dict[str, Any] = next((v for v in views if v["edge"] == edge.name), {})
        jobs = await self._admin(edge.consumer, "/admin/jobs")
        return EdgeDrift(
            edge=edge.name,
            owner=edge.owner,
            consumer=edge.consumer,
            entity=edge.entity,
            mechanism=edge.mechanism.value,
            counts=counts,
            keys=keys,
            lag=None if edge.mechanism is Mechanism.EVENT else lag,
            last_sync_at=_moment(view.get("last_sync_at")),
            last_run_at=_moment(view.get("last_run_at")),
            last_change_at=_moment(view.get("last_change_at")),
            lost_local_edits=view.get("lost_local_edits"),
            withheld_owner_changes=view.get("withheld_owner_changes"),
            method=found.method,
            fallback=found.fallback,
            retry=_pending_retry(edge, jobs),
        )

    async def _marks(self, edge: Edge, clock: Mapping[str, Any], now: datetime) -> Marks | None:
        """Both sides' write marks and the day, or None while either cannot vouch for itself."""
        owner = (
            clock if edge.owner == edge.consumer else await self._admin(edge.owner, "/admin/clock")
        )
        if owner.get("written") is None or clock.get("written") is None:
            return None
        return owner["written"], clock["written"], now.date()

    async def _audited(self, edge: Edge, now: datetime, marks: Marks | None) -> Audited:
        bisected: tuple[list[KeyDrift], dict[str, int], Lag] | None = None
        fallback = None
        if self.bisect:
            fallback = _unbisectable(edge)
            if fallback is None:
                try:
                    bisected = await self._bisected(edge, now)
                except UpstreamError as error:
                    if error.status != 404:
                        raise
                    fallback = f"no checksums from {error.service}: {_said(error)}"
        keys, counts, lag = bisected or await self._listed_all(edge, now)
        method = "full" if bisected is None else "bisect"
        return Audited(marks or ("", "", now.date()), keys, counts, lag, method, fallback)

    async def _listed_all(
        self, edge: Edge, now: datetime
    ) -> tuple[list[KeyDrift], dict[str, int], Lag]:
        copies = await self._copies(edge)
        records = await self._owner_records(edge, now, sorted(copies))
        if edge.mechanism is Mechanism.EVENT or edge.reader.by_key:
            # the consumer asks for these one by one: only the keys it asked for are its to have
            records = [
                r for r in records if str(edge.translate(r.fields)[edge.key_field]) in copies
            ]
        return classify(edge, records, copies, now)

    async def _bisected(
        self, edge: Edge, now: datetime
    ) -> tuple[list[KeyDrift], dict[str, int], Lag]:
        """Only the keys whose range checksums differ, read and classified as a full audit would."""
        whole = {"buckets": 1}
        [owned] = (await self._get(edge.owner, f"/checksums/records/{edge.name}", whole))["buckets"]
        [held] = (await self._get(edge.consumer, f"/checksums/copies/{edge.name}", whole))[
            "buckets"
        ]
        if (owned["count"], owned["checksum"]) == (held["count"], held["checksum"]):
            return [], {**dict.fromkeys(CLASSES, 0), "in_sync": owned["count"]}, Lag(0, None, None)
        found = await checksums.bisect(self.clients[edge.owner], self.clients[edge.consumer], edge)
        differing = sorted(found.keys)
        copies = {
            key: copy
            for key, copy in zip(differing, await self._fanned(edge, differing), strict=True)
            if copy is not None
        }
        records = await self._owner_records_of(edge, now, differing)
        keys, counts, lag = classify(edge, records, copies, now)
        # every key of either side outside the differing ones matched its owner's record
        counts["in_sync"] += owned["count"] + len(found.extra) - len(differing)
        return keys, counts, lag

    async def _fanned(self, edge: Edge, keys: list[str]) -> list[dict[str, Any] | None]:
        copies: list[dict[str, Any] | None] = []
        for start in range(0, len(keys), self.fan_out):
            batch = keys[start : start + self.fan_out]
            copies += await asyncio.gather(*(self._copy(edge, key) for key in batch))
        return copies

    async def _copy(self, edge: Edge, key: str) -> dict[str, Any] | None:
        try:
            copy: dict[str, Any] = await self._get(edge.consumer, f"/copies/{edge.entity}/{key}")
        except UpstreamError as error:
            if error.status == 404:
                return None
            raise
        return copy

    async def _owner_records_of(
        self, edge: Edge, now: datetime, keys: list[str]
    ) -> list[SourceRecord]:
        """The owner's records of `keys` as the edge's reader returns them."""
        wanted = set(keys)
        if edge.reader is not KERNEL_READER:
            # a whole-file owner (the GIAS extract) serves nothing narrower than its file
            records = await self._owner_records(edge, now, keys)
            return [r for r in records if str(edge.translate(r.fields)[edge.key_field]) in wanted]
        upstream = self._reading(edge)
        reader = KernelReader(upstream, edge.entity, self._source_key(edge), 1)
        found: list[SourceRecord | None] = []
        for start in range(0, len(keys), self.fan_out):
            batch = keys[start : start + self.fan_out]
            found += await asyncio.gather(*(self._record_at(reader, key) for key in batch))
        return [
            r
            for r in found
            if r is not None and str(edge.translate(r.fields)[edge.key_field]) in wanted
        ]

    async def _record_at(self, reader: KernelReader, key: str) -> SourceRecord | None:
        """The first record after all keys before `key`: the record itself, if the owner has it."""
        params = {"after": _just_before(key), "limit": 1}
        body = await reader.upstream.get_json(f"/records/{reader.entity}", params)
        return next(
            (SourceRecord(str(r[reader.key_field]), int(r["version"]), r) for r in body["records"]),
            None,
        )

    async def _owner_records(
        self, edge: Edge, now: datetime, copied: list[str]
    ) -> list[SourceRecord]:
        consumer = await self._admin(edge.consumer, "/admin/clock")
        context = ReadContext(
            edge=edge,
            upstream=self._reading(edge),
            key_field=self._source_key(edge),
            clock=SimulatedClock(ClockMode.MANUAL, now),
            year=int(consumer["recruitment_cycle_year"]),
            page_size=self.page_size,
            wanted=copied,
            known=await self._known_walk(edge),
            known_records=await self._known_answers(edge),
        )
        reader = reader_for(context)
        records: list[SourceRecord] = []
        async for page in reader.pages(None):
            records += page.records
        return records

    async def _known_walk(self, edge: Edge) -> KnownFromLog | None:
        """What the edge's reader remembers, told the owner's head now, where it vouches one."""
        remembers = edge.reader.remembers
        if not self.remember or remembers is None:
            return None
        known = self._known.setdefault(edge.walk or edge.name, remembers())
        known.head = await self._head(edge.owner)
        return known

    async def _known_answers(self, edge: Edge) -> KnownRecords | None:
        """What a key-at-a-time reader was answered, told the owner's head and log since."""
        if not self.remember or not edge.reader.by_key:
            return None
        return await self._caught_up(edge.name, edge.owner, edge.entity)

    async def _caught_up(self, name: str, owner: str, entity: str) -> KnownRecords:
        """What `name` read of `owner` as last answered, as far as its log lets that hold."""
        known = self._known_records.setdefault(name, KnownRecords())
        known.head = await self._head(owner)
        # the log is the auditor's own to read: a consumer reading key by key is granted no feed
        upstream = ReadingUpstream(owner, self.clients[owner], self.token, None)
        await known.catch_up(upstream, [entity])
        return known

    async def _head(self, owner: str) -> int | None:
        head: int | None = (await self._admin(owner, "/admin/clock")).get("head")
        return head

    def _reading(self, edge: Edge) -> ReadingUpstream:
        """The owner as the consumer reads it: the same API, grants and scope."""
        return ReadingUpstream(edge.owner, self.clients[edge.owner], self.token, edge.consumer)

    def _source_key(self, edge: Edge) -> str:
        return edge.source_key or self.topology.entity(edge.entity).key

    async def _copies(self, edge: Edge) -> dict[str, dict[str, Any]]:
        listing = Listing(edge.consumer, f"/copies/{edge.entity}", items="copies")
        copies = await listed(self._get, listing, self.page_size)
        return {str(copy[edge.key_field]): copy for copy in copies}

    async def comparisons(self) -> list[Comparison]:
        """The topology's declared comparisons whose services are both running."""
        running = set(self.clients)
        return [
            await compare(
                check, self._get, self.page_size, self.fan_out, await self._known_lookups(check)
            )
            for check in self.topology.comparisons
            if set(check.services) <= running
        ]

    async def _known_lookups(self, check: RecordCheck) -> KnownRecords | None:
        """What the check's side looked up key by key was answered, where its log lets it hold."""
        looked_up = [side.service for side in check.sides if isinstance(side.reading, Lookup)]
        if not self.remember or not looked_up:
            return None
        return await self._caught_up(check.name, looked_up[0], check.entity)

    async def _now(self) -> datetime:
        clocks = [await self._admin(name, "/admin/clock") for name in self.clients]
        return max(datetime.fromisoformat(c["now"]) for c in clocks)

    async def _admin(self, service: str, path: str) -> Any:
        return await self._get(service, path)

    def _headers(self) -> dict[str, str]:
        return bearer(self.token)

    async def _get(self, service: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.clients[service].get(path, params=params, headers=self._headers())
        if response.status_code >= 400:
            raise UpstreamError(service, response.status_code, response.text[:500])
        return response.json()


def _said(error: UpstreamError) -> str:
    """A refusal's own words: the `detail` of FastAPI's JSON answer, else its text."""
    try:
        detail = json.loads(error.detail)["detail"]
    except (ValueError, KeyError, TypeError):
        return error.detail
    return detail if isinstance(detail, str) else json.dumps(detail)


def _unbisectable(edge: Edge) -> str | None:
    """Why checksums cannot stand in for listing this edge, if they cannot."""
    if edge.mechanism is Mechanism.EVENT or edge.reader.by_key:
        return "the consumer copies only the keys it asks for; checksums cover every record"
    return None


def _just_before(key: str) -> str:
    """A string after every key that sorts before `key` (none of them ends in U+10FFFF)."""
    if not key or key[-1] == "\x00":
        return key[:-1]
    return key[:-1] + chr(ord(key[-1]) - 1) + "\U0010ffff"


def exceeded(report: DriftReport, limits: Mapping[str, int]) -> list[str]:
    """Each class whose total is over its limit, said plainly."""
    totals = report.totals()
    return [
        f"{name}: {totals[name]} over the limit of {limit}"
        for name, limit in limits.items()
        if totals[name] > limit
    ]


def history_sample(report: DriftReport) -> dict[str, Any]:
    """This run's figures per edge at the simulated time, as the sampling history keeps them."""
    return {
        "at": report.at.isoformat(),
        "edges": {
            e.edge: {
                "counts": e.counts,
                "lag_changes": e.lag.changes if e.lag else None,
                "lag_oldest_age_seconds": e.lag.oldest_age_seconds if e.lag else None,
                "lost_local_edits": e.lost_local_edits,
            }
            for e in report.edges
        },
        "comparisons": {c.name: {"counts": c.counts} for c in report.comparisons},
    }


def record_history(report: DriftReport, state_dir: Path) -> Path:
    """Append this run's figures to the sampling history."""
    path = state_dir / "drift-history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as history:
        history.write(json.dumps(history_sample(report)) + "\n")
    return path


def read_history(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "drift-history.jsonl"
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def history_rows(
    samples: Sequence[Mapping[str, Any]], names: Collection[str] = ()
) -> list[dict[str, Any]]:
    """One row per moment and edge (or comparison), of `names` if given: the last taken then."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for sample in samples:
        for name, figures in [*sample["edges"].items(), *sample["comparisons"].items()]:
            if not names or name in names:
                rows.pop((sample["at"], name), None)
                rows[(sample["at"], name)] = {"at": sample["at"], "edge": name, **figures}
    return sorted(rows.values(), key=lambda row: datetime.fromisoformat(row["at"]))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #0b0c0c; }
table { border-collapse: collapse; margin-bottom: 1.5rem; }
th, td { border: 1px solid #b1b4b6; padding: .3rem .6rem; text-align: left; }
td.n { text-align: right; }
.in_sync { color: #00703c; } .stale, .missing { color: #b58840; }
.diverged, .orphaned, .conflicting { color: #d4351c; }
"""


def render_html(report: DriftReport) -> str:
    """A self-contained page: inline style, no scripts, nothing fetched."""
    e = html.escape
    rows = []
    for item in report.items():
        name = (
            item.edge
            if isinstance(item, EdgeDrift)
            else f"{item.name} ({' / '.join(item.services)})"
        )
        lag = "n/a"
        if isinstance(item, EdgeDrift) and item.lag is not None:
            lag = f"{item.lag.changes}"
            if item.lag.oldest_age_seconds is not None:
                lag += f", oldest {item.lag.oldest_age_seconds / 3600:.1f} h"
        last = (
            item.last_sync_at.isoformat()
            if isinstance(item, EdgeDrift) and item.last_sync_at
            else "-"
        )
        retry = item.retry if isinstance(item, EdgeDrift) else None
        retrying = retry.describe() if retry else "-"
        cells = "".join(f'<td class="n {c}">{item.counts[c]}</td>' for c in CLASSES)
        rows.append(
            f"<tr><td>{e(name)}</td>{cells}<td>{e(lag)}</td><td>{e(last)}</td>"
            f"<td>{e(retrying)}</td></tr>"
        )
    details = []
    for item in report.items():
        if not item.keys:
            continue
        name = item.edge if isinstance(item, EdgeDrift) else item.name
        lines = []
        for key in item.keys:
            for diff in key.differences or [Difference("-", {})]:
                values = "; ".join(
                    f"{e(s)}: {e(json.dumps(v, default=str))}" for s, v in diff.values.items()
                )
                lines.append(
                    f'<tr><td>{e(key.key)}</td><td class="{key.drift}">{key.drift}</td>'
                    f"<td>{e(diff.field)}</td><td>{values}</td></tr>"
                )
        details.append(
            f"<h2>{e(name)}</h2><table><tr><th>key</th><th>class</th><th>field</th>"
            f"<th>values</th></tr>{''.join(lines)}</table>"
        )
    head = "".join(f"<th>{c}</th>" for c in CLASSES)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>serviceline drift at {e(report.at.isoformat())}</title><style>{STYLE}</style>"
        f"</head><body><h1>Drift at {e(report.at.isoformat())} (simulated)</h1>"
        f"<table><tr><th>edge</th>{head}<th>lag</th><th>last sync</th><th>retrying</th></tr>"
        f"{''.join(rows)}</table>"
        f"{''.join(details)}</body></html>"
    )
