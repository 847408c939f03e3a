"""The lag of every change on every edge, measured from the owners' and consumers' own logs.

An owner's change log says when each version of a record was committed; a consumer's applied
log says when its copy took each version in, and its copy runs what each run read and cost.
A change is delivered at the first moment the copy holds that version; superseded when the
first version the copy holds after it is a later one (or the owner replaced it before any run
read it); never delivered when the edge's mechanism cannot bring it (a hard delete under
`updated_since` with no full sync after it); pending when it is not held yet but will be. A
change to a key the copy did not hold, that a later run read and left alone, is out of the
edge's scope and not counted. docs/lag.md gives every rule.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx

from serviceline.model.topology import Edge, Mechanism, Topology
from serviceline.stack.control import ControlError, LineControl

# seconds: 1 and 5 minutes, 10 and 30 minutes, 1, 2, 6 and 12 hours, 1 and 2 days, a week
VISIBILITY_GRID = (60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800)


@dataclass(frozen=True, slots=True)
class OwnerChange:
    owner: str
    seq: int
    entity: str
    key: str
    version: int
    op: str
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    id: int
    edge: str
    key: str
    version: int | None
    op: str
    read_at: datetime
    applied_at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    edge: str
    mechanism: str
    full: bool
    started_at: datetime
    finished_at: datetime | None
    requests: int = 0
    bytes: int = 0
    found_nothing: bool = True
    skipped: bool = False
    seen: frozenset[str] = frozenset()


@dataclass
class LagLogs:
    """The three logs as collected: owner changes, applied keys and copy runs."""

    changes: list[OwnerChange] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    SUPERSEDED = "superseded"
    NEVER_DELIVERED = "never_delivered"
    PENDING = "pending"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True, slots=True)
class Fate:
    """What became of one owner change on one edge: its outcome, and its lag if delivered."""

    change: OwnerChange
    outcome: Outcome
    lag: float | None = None


@dataclass(frozen=True)
class Stats:
    changes: int
    delivered: int
    superseded: int
    never_delivered: int
    pending: int
    lags: tuple[float, ...]

    @classmethod
    def of(cls, fates: Sequence[Fate]) -> Stats:
        counted = [fate for fate in fates if fate.outcome is not Outcome.OUT_OF_SCOPE]
        count = dict.fromkeys(Outcome, 0)
        for fate in counted:
            count[fate.outcome] += 1
        lags = tuple(sorted(f.lag for f in counted if f.lag is not None))
        return cls(
            len(counted),
            count[Outcome.DELIVERED],
            count[Outcome.SUPERSEDED],
            count[Outcome.NEVER_DELIVERED],
            count[Outcome.PENDING],
            lags,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": self.changes,
            "delivered": self.delivered,
            "superseded": self.superseded,
            "never_delivered": self.never_delivered,
            "pending": self.pending,
            "lag_seconds": summary(self.lags),
            "visibility": visibility(self.lags, self.changes),
        }


@dataclass(frozen=True)
class Cost:
    runs: int = 0
    empty_runs: int = 0
    skipped_runs: int = 0
    requests: int = 0
    bytes: int = 0

    @classmethod
    def of(cls, runs: Iterable[Run]) -> Cost:
        listed = list(runs)
        return cls(
            len(listed),
            sum(run.found_nothing for run in listed),
            sum(run.skipped for run in listed),
            sum(run.requests for run in listed),
            sum(run.bytes for run in listed),
        )


@dataclass(frozen=True)
class EdgeLag:
    stats: Stats
    by_op: Mapping[str, Stats]
    cost: Cost

    def to_json(self) -> dict[str, Any]:
        return {
            **self.stats.to_json(),
            "by_op": {op: stats.to_json() for op, stats in self.by_op.items()},
            "cost": vars(self.cost).copy(),
        }


@dataclass(frozen=True)
class JourneyLag:
    edges: tuple[str, ...]
    changes: int
    delivered: int
    lags: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "edges": list(self.edges),
            "changes": self.changes,
            "delivered": self.delivered,
            "lag_seconds": summary(self.lags),
            "visibility": visibility(self.lags, self.changes),
        }


@dataclass(frozen=True)
class LagReport:
    until: datetime
    edges: Mapping[str, EdgeLag]
    journeys: Mapping[str, JourneyLag]

    def to_json(self) -> dict[str, Any]:
        return {
            "edges": {name: lag.to_json() for name, lag in self.edges.items()},
            "journeys": {name: journey.to_json() for name, journey in self.journeys.items()},
        }


def summary(lags: Sequence[float]) -> dict[str, float] | None:
    """p50, p95, p99 (interpolated between the nearest ranks), max and mean; None for none."""
    if not lags:
        return None
    ordered = sorted(lags)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else None
    return {
        "p50": cuts[49] if cuts else ordered[0],
        "p95": cuts[94] if cuts else ordered[0],
        "p99": cuts[98] if cuts else ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def visibility(lags: Sequence[float], changes: int) -> list[list[float]]:
    """The share of `changes` delivered within each time of the grid (0 when there are none)."""
    ordered = sorted(lags)
    return [
        [seconds, bisect.bisect_right(ordered, seconds) / changes if changes else 0.0]
        for seconds in VISIBILITY_GRID
    ]


def default_journeys(topology: Topology) -> dict[str, tuple[str, ...]]:
    """One journey per owner entity copied by two or more edges: every copy holding a change."""
    copied: dict[str, list[str]] = defaultdict(list)
    for edge in topology.edges:
        if edge.mechanism is not Mechanism.EVENT:
            copied[f"{edge.owner}.{edge.entity}"].append(edge.name)
    return {name: tuple(edges) for name, edges in copied.items() if len(edges) > 1}


@dataclass
class _Key:
    """One key's history on one edge: the owner's changes, what the copy took, when."""

    changes: list[OwnerChange] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    # (started_at, finished_at) of incremental runs that saw the key unchanged
    seen: list[tuple[datetime, datetime]] = field(default_factory=list)
    _changed: list[datetime] = field(default_factory=list)
    _versions: list[int] = field(default_factory=list)
    _applied: list[datetime] = field(default_factory=list)

    # the furthest change any applied row up to each one had brought
    _reach: list[int] = field(default_factory=list)
    _seen_starts: list[datetime] = field(default_factory=list)

    def order(self) -> None:
        self.changes.sort(key=lambda c: c.seq)
        self.applied.sort(key=lambda r: (r.applied_at, r.id))
        self.seen.sort()
        self._changed = [c.changed_at for c in self.changes]
        self._versions = [c.version for c in self.changes]
        self._applied = [r.applied_at for r in self.applied]
        self._seen_starts = [started for started, _ in self.seen]
        furthest = -1
        for row in self.applied:
            furthest = max(furthest, self.index_of(row))
            self._reach.append(furthest)

    def first_applied(self, index: int) -> tuple[datetime, int] | None:
        """When an applied row first brought change `index` or a later one, and which."""
        at = bisect.bisect_left(self._reach, index)
        return (self._applied[at], self._reach[at]) if at < len(self.applied) else None

    def first_seen(self, moment: datetime) -> tuple[datetime, int] | None:
        """When the first incremental run begun after `moment` that saw the key ended, and
        the change it read."""
        at = bisect.bisect_right(self._seen_starts, moment)
        if at == len(self.seen):
            return None
        started, finished = self.seen[at]
        return finished, self.covered(started)

    def covered(self, moment: datetime) -> int:
        """The index of the last change committed by `moment` (-1: none)."""
        return bisect.bisect_right(self._changed, moment) - 1

    def index_of(self, row: Applied) -> int:
        """The change an applied row brought: its version, or the last one read by then."""
        if row.version is None:
            return self.covered(row.read_at)
        return bisect.bisect_right(self._versions, row.version) - 1

    def held_at(self, moment: datetime) -> bool:
        """Whether the copy held the key (not deleted, not flagged) at `moment`."""
        last = bisect.bisect_right(self._applied, moment) - 1
        return last >= 0 and self.applied[last].op == "upsert"


@dataclass
class EdgeLogs:
    """The part of each log about one edge."""

    changes: list[OwnerChange] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)


def by_edge(logs: LagLogs, topology: Topology) -> dict[str, EdgeLogs]:
    """Each edge's changes, applied rows and runs, sorted out in one pass over each log."""
    edges: dict[str, EdgeLogs] = defaultdict(EdgeLogs)
    owned: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in topology.edges:
        owned[(edge.owner, edge.entity)].append(edge.name)
    for change in logs.changes:
        for name in owned.get((change.owner, change.entity), ()):
            edges[name].changes.append(change)
    for row in logs.applied:
        edges[row.edge].applied.append(row)
    for copy_run in logs.runs:
        edges[copy_run.edge].runs.append(copy_run)
    return edges


class EdgeMeasure:
    """The fate of every owner change on one edge, from the logs up to `until`."""

    def __init__(
        self,
        edge: Edge,
        logs: EdgeLogs,
        until: datetime,
        since: datetime | None,
    ) -> None:
        self.edge = edge
        self.until = until
        self.since = since
        self.keys: dict[str, _Key] = defaultdict(_Key)
        for change in logs.changes:
            if change.changed_at <= until:
                self.keys[change.key].changes.append(change)
        for row in logs.applied:
            if row.applied_at <= until:
                self.keys[row.key].applied.append(row)
        self.runs = sorted(
            (r for r in logs.runs if r.started_at <= until), key=lambda r: (r.started_at, r.id)
        )
        # measured as it ran: a what-if override is in the runs' own record
        self.mechanism = self.runs[-1].mechanism if self.runs else edge.mechanism.value
        self.read = [r for r in self.runs if r.finished_at is not None and r.finished_at <= until]
        self.full = [r for r in self.read if r.full]
        for run in self.read:
            assert run.finished_at is not None
            for key in run.seen:
                self.keys[key].seen.append((run.started_at, run.finished_at))
        for history in self.keys.values():
            history.order()
        self._read_starts = [r.started_at for r in self.read]
        self._full_starts = [r.started_at for r in self.full]

    def fates(self) -> list[Fate]:
        found = []
        for history in self.keys.values():
            for index, change in enumerate(history.changes):
                if self.since is None or change.changed_at >= self.since:
                    found.append(self._fate(history, index))
        return found

    def cost(self) -> Cost:
        return Cost.of(r for r in self.runs if self.since is None or r.started_at >= self.since)

    def _fate(self, history: _Key, index: int) -> Fate:
        change = history.changes[index]
        if not history.applied and not history.seen:
            return Fate(change, self._never_held(history, index))
        held = self._first_hold(history, index)
        if held is not None:
            moment, covered = held
            if covered == index:
                lag = (moment - change.changed_at).total_seconds()
                return Fate(change, Outcome.DELIVERED, lag)
            return Fate(change, Outcome.SUPERSEDED)
        return Fate(change, self._unheld(history, index))

    def _first_hold(self, history: _Key, index: int) -> tuple[datetime, int] | None:
        """The first moment after `change` the copy held it or a later change, and which."""
        change = history.changes[index]
        holds = [
            hold
            # a run holds what it read: only one begun after the change surely read it
            for hold in (history.first_applied(index), history.first_seen(change.changed_at))
            if hold is not None
        ]
        # a full run holds, at its end, what it read of every key its copy then holds; a key it
        # does not hold then comes back only by an applied row, which the rows above would see
        at = bisect.bisect_right(self._full_starts, change.changed_at)
        if at < len(self.full):
            ended = self.full[at].finished_at
            assert ended is not None
            if history.held_at(ended):
                holds.append((ended, history.covered(self.full[at].started_at)))
        return min(holds, default=None)

    def _never_held(self, history: _Key, index: int) -> Outcome:
        """A key the copy never held: out of its scope once a run has read past the change."""
        change = history.changes[index]
        read = bisect.bisect_right(self._read_starts, change.changed_at) < len(self.read)
        if read or change.op == "delete":
            return Outcome.OUT_OF_SCOPE
        return Outcome.SUPERSEDED if index + 1 < len(history.changes) else Outcome.PENDING

    def _unheld(self, history: _Key, index: int) -> Outcome:
        change = history.changes[index]
        after = bisect.bisect_right(self._read_starts, change.changed_at)
        reader = self.read[after] if after < len(self.read) else None
        held = history.held_at(change.changed_at)
        if change.op == "delete" and not held:
            return Outcome.OUT_OF_SCOPE  # the copy had nothing to remove
        later = history.changes[index + 1 : index + 2]
        if later and (reader is None or later[0].changed_at < reader.started_at):
            return Outcome.SUPERSEDED  # the owner replaced it before any run read it
        if change.op == "delete":
            fully_read = bisect.bisect_right(self._full_starts, change.changed_at) < len(self.full)
            if self.mechanism == Mechanism.UPDATED_SINCE.value and not fully_read:
                return Outcome.NEVER_DELIVERED  # only a full sync sees a record gone
            return Outcome.PENDING if reader is None else Outcome.NEVER_DELIVERED
        if reader is None:
            return Outcome.PENDING
        # a run read it and took nothing: not for this copy, unless the copy held the key
        return Outcome.NEVER_DELIVERED if held else Outcome.OUT_OF_SCOPE


def measure(
    logs: LagLogs,
    topology: Topology,
    until: datetime,
    *,
    services: Iterable[str] | None = None,
    since: datetime | None = None,
    journeys: Mapping[str, Sequence[str]] | None = None,
) -> LagReport:
    """Every copy edge whose owner and consumer are among `services` (all, if None), and the
    journeys made of them; the changes committed from `since` to `until`."""
    present = set(services) if services is not None else None
    measured: dict[str, EdgeLag] = {}
    fates: dict[str, list[Fate]] = {}
    sorted_out = by_edge(logs, topology)
    for edge in topology.edges:
        if edge.mechanism is Mechanism.EVENT:
            continue
        if present is not None and not {edge.owner, edge.consumer} <= present:
            continue
        ruler = EdgeMeasure(edge, sorted_out[edge.name], until, since)
        fates[edge.name] = ruler.fates()
        by_op: dict[str, list[Fate]] = {"upsert": [], "delete": []}
        for fate in fates[edge.name]:
            by_op.setdefault(fate.change.op, []).append(fate)
        measured[edge.name] = EdgeLag(
            Stats.of(fates[edge.name]),
            {op: Stats.of(listed) for op, listed in by_op.items()},
            ruler.cost(),
        )
    chosen = default_journeys(topology) if journeys is None else journeys
    followed = {
        name: _journey(tuple(edges), fates)
        for name, edges in chosen.items()
        if all(edge in fates for edge in edges)
    }
    return LagReport(until, measured, followed)


def _journey(edges: tuple[str, ...], fates: Mapping[str, list[Fate]]) -> JourneyLag:
    """A change counts if every edge counts it; it arrives when the last edge delivers it."""
    outcomes: dict[tuple[str, int], list[Fate]] = defaultdict(list)
    for edge in edges:
        for fate in fates[edge]:
            outcomes[(fate.change.owner, fate.change.seq)].append(fate)
    counted = [
        found
        for found in outcomes.values()
        if len(found) == len(edges) and all(f.outcome is not Outcome.OUT_OF_SCOPE for f in found)
    ]
    arrived = [
        max(f.lag for f in found if f.lag is not None)
        for found in counted
        if all(f.outcome is Outcome.DELIVERED for f in found)
    ]
    return JourneyLag(edges, len(counted), len(arrived), tuple(sorted(arrived)))


def latest_taken(
    logs: LagLogs,
    applied_from: int,
    consumers: Collection[str],
    by: datetime,
    topology: Topology,
) -> datetime | None:
    """When the owner committed the latest change made by `by` that a copy in `consumers` took
    in from applied row `applied_from` (an index into `logs.applied`) on; None if none did."""
    edges = {edge.name: edge for edge in topology.edges if edge.consumer in consumers}
    rows = [row for row in logs.applied[applied_from:] if row.edge in edges]
    wanted = {(edges[row.edge].owner, edges[row.edge].entity, row.key) for row in rows}
    made: dict[tuple[str, str, str], list[OwnerChange]] = defaultdict(list)
    for change in logs.changes:
        where = (change.owner, change.entity, change.key)
        if where in wanted and change.changed_at <= by:
            made[where].append(change)
    latest: datetime | None = None
    for row in rows:
        edge = edges[row.edge]
        brought = [
            change.changed_at
            for change in made.get((edge.owner, edge.entity, row.key), [])
            if (
                change.version == row.version
                if row.version is not None
                else change.changed_at <= row.read_at
            )
        ]
        if brought and (latest is None or max(brought) > latest):
            latest = max(brought)
    return latest


LOGS = {"changelog": "changes", "applied": "applied", "copy-runs": "runs"}


class LagCollector:
    """Pulls the three logs from every running service, each time only what is new."""

    def __init__(self, control: LineControl) -> None:
        self.control = control
        self.logs = LagLogs()
        self.services: set[str] = set()
        self._after: dict[tuple[str, str], int] = {}

    async def collect(self) -> None:
        for service in list(self.control.clients):
            try:
                for log, rows in LOGS.items():
                    await self._pull(service, log, rows)
            except (ControlError, httpx.TransportError):
                continue  # down for now: what it logged waits for the next collect
            self.services.add(service)

    async def _pull(self, service: str, log: str, rows: str) -> None:
        while True:
            after = self._after.get((service, log), 0)
            page = await self.control.read_log(service, log, after)
            self._take(service, log, page[rows])
            self._after[(service, log)] = int(page["next"])
            if not page["has_more"]:
                return

    def _take(self, service: str, log: str, rows: list[dict[str, Any]]) -> None:
        if log == "changelog":
            self.logs.changes += [owner_change(service, row) for row in rows]
        elif log == "applied":
            self.logs.applied += [applied(row) for row in rows]
        else:
            self.logs.runs += [run(row) for row in rows]

    def report(
        self,
        until: datetime,
        *,
        since: datetime | None = None,
        journeys: Mapping[str, Sequence[str]] | None = None,
    ) -> LagReport:
        return measure(
            self.logs,
            self.control.topology,
            until,
            services=self.services,
            since=since,
            journeys=journeys,
        )


def owner_change(owner: str, row: Mapping[str, Any]) -> OwnerChange:
    return OwnerChange(
        owner,
        int(row["seq"]),
        row["entity"],
        row["key"],
        int(row["version"]),
        row["op"],
        datetime.fromisoformat(row["changed_at"]),
    )


def applied(row: Mapping[str, Any]) -> Applied:
    return Applied(
        int(row["id"]),
        row["edge"],
        row["key"],
        row["version"],
        row["op"],
        datetime.fromisoformat(row["read_at"]),
        datetime.fromisoformat(row["applied_at"]),
    )


def run(row: Mapping[str, Any]) -> Run:
    finished = row["finished_at"]
    return Run(
        int(row["id"]),
        row["edge"],
        row["mechanism"],
        bool(row["full"]),
        datetime.fromisoformat(row["started_at"]),
        datetime.fromisoformat(finished) if finished else None,
        int(row["requests"]),
        int(row["bytes"]),
        bool(row["found_nothing"]),
        bool(row["skipped"]),
        frozenset(row.get("seen") or ()),
    )
