"""One record followed through a line: its versions at the owner, and what each copy held when.

The lag module's logs and its rules say when each copy first held each version (docs/lag.md);
this module picks out one key, names the run that brought each version and why it came when it
did (the schedule it waited for, failed runs retried before it, a full sync), and sets beside it
what each consumer says of its copy now: the columns edited there and what the edge's policy
did to them: each edit the consumer logged, and the version that overwrote it or that it keeps
out. The fault windows each end logged (`/admin/faults/windows`) label a delay a fault caused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from serviceline.audit.lag import (
    Applied,
    EdgeLogs,
    EdgeMeasure,
    Fate,
    LagCollector,
    LagLogs,
    Outcome,
    OwnerChange,
    Run,
    by_edge,
    default_journeys,
)
from serviceline.model.topology import Edge, Mechanism, Policy, Topology
from serviceline.runtime.faults import SERVER_FAULTS, FaultKind
from serviceline.runtime.scheduler import next_fire

TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Edit:
    """One column of the copy edited at its consumer, and what became of the edit since."""

    column: str
    value: Any
    edited_at: datetime
    outcome: str  # held, overwritten, kept or replaced (copier.LocalEdit)
    settled_at: datetime | None = None
    owner_value: Any = None
    owner_version: int | None = None

    def words(self, policy: Policy) -> str:
        said = f"{self.column} set to {self.value!r} here {when(self.edited_at)}"
        version = f"version {self.owner_version}" if self.owner_version else "the owner"
        if self.outcome == "overwritten":
            return (
                f"{said}: overwritten {when(self.settled_at)} by {version}'s "
                f"{self.owner_value!r} ({policy.value}): the edit is lost"
            )
        if self.outcome == "kept":
            return (
                f"{said}: kept ({policy.value}); {version}'s {self.owner_value!r} held back "
                f"since {when(self.settled_at)}"
            )
        if self.outcome == "replaced":
            return f"{said}: replaced by a later edit here {when(self.settled_at)}"
        if policy is Policy.LOCAL_WINS:
            return f"{said}: held; the owner's later changes to it will be held back"
        return f"{said}: held; the next owner change to it overwrites it"

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": self.value,
            "edited_at": self.edited_at.isoformat(),
            "outcome": self.outcome,
            "settled_at": self.settled_at.isoformat() if self.settled_at else None,
            "owner_value": self.owner_value,
            "owner_version": self.owner_version,
        }


@dataclass(frozen=True)
class FaultSpan:
    """A fault that was set on one end of a hop, from when until when on the simulated clock."""

    service: str
    kind: str
    edge: str | None
    began_at: datetime
    until: datetime | None  # None: still set

    def words(self) -> str:
        end = f"to {when(self.until)}" if self.until else "on, until cleared"
        return f"{self.kind} on {self.service} from {when(self.began_at)} {end}"

    def overlaps(self, begin: datetime, end: datetime) -> bool:
        return self.began_at < end and (self.until is None or self.until > begin)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "kind": self.kind,
            "edge": self.edge,
            "from": self.began_at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True)
class CopyState:
    """What a consumer says of one edge now: its copy of the key, the edge's job and faults."""

    copy: Mapping[str, Any] | None = None
    lost_local_edits: int = 0
    withheld_owner_changes: int = 0
    failures: int = 0
    retry_due_at: datetime | None = None
    retries_left: int | None = None
    last_error: str | None = None
    faults: tuple[str, ...] = ()
    # the edits logged of this key's copy, and every fault either end of the edge logged
    edits: tuple[Edit, ...] = ()
    windows: tuple[FaultSpan, ...] = ()


@dataclass(frozen=True)
class Wait:
    """Why a version reached a copy when it did: the run that brought it, and what that run was."""

    schedule: str | None
    mechanism: str
    due_at: datetime | None  # the edge's first scheduled run after the change
    run_at: datetime | None  # the run that brought it began; None: not brought yet
    full: bool = False
    on_schedule: bool = True
    failed_runs: int = 0  # runs begun after the change that failed before that one
    follow: bool = False  # the edge follows its owner's feed: no schedule to wait for

    def words(self) -> str:
        how = f"{self.mechanism}, cron {self.schedule}" if self.schedule else self.mechanism
        if self.follow:
            how = f"{self.mechanism}, following"
        if self.run_at is None:
            return f"waits for the run due {when(self.due_at)} ({how})" if self.due_at else how
        which = "full run" if self.full else "run"
        said = f"the {when(self.run_at)} {which} ({how})"
        if not self.on_schedule:
            said += ", off schedule: a retry" if self.failed_runs else ", off schedule: run now"
        elif self.due_at is not None and self.due_at < self.run_at and not self.failed_runs:
            said += f"; the {when(self.due_at)} run did not bring it"
        if self.failed_runs:
            said += f", after {self.failed_runs} failed run{'s' if self.failed_runs > 1 else ''}"
        return said


@dataclass(frozen=True)
class Arrival:
    """One owner version on one hop: what became of it, when, and why then."""

    change: OwnerChange
    outcome: Outcome
    arrived_at: datetime | None
    lag_seconds: float | None
    wait: Wait
    superseded_by: int | None = None  # the version the copy held instead
    # the faults that acted on the hop while this version waited, when it came late
    faults: tuple[FaultSpan, ...] = ()

    def words(self) -> str:
        if self.outcome in (Outcome.DELIVERED, Outcome.PENDING) and self.faults:
            return self.wait.words() + "; delayed by " + ", ".join(f.words() for f in self.faults)
        if self.outcome is Outcome.DELIVERED:
            return self.wait.words()
        if self.outcome is Outcome.SUPERSEDED:
            return f"never seen: version {self.superseded_by} replaced it before a run read it"
        if self.outcome is Outcome.NEVER_DELIVERED:
            return f"never delivered: {self.wait.mechanism} cannot bring it"
        if self.outcome is Outcome.PENDING:
            return self.wait.words()
        return "out of this copy's scope"


@dataclass(frozen=True)
class Held:
    """What the copy held from `since`: a version (None: the owner's as read then) or nothing."""

    since: datetime
    version: int | None
    op: str


@dataclass(frozen=True)
class Hop:
    edge: Edge
    running: bool
    arrivals: tuple[Arrival, ...] = ()
    held: tuple[Held, ...] = ()
    state: CopyState = field(default_factory=CopyState)

    @property
    def never_saw(self) -> list[int]:
        return [a.change.version for a in self.arrivals if a.outcome is Outcome.SUPERSEDED]

    @property
    def local_edits(self) -> list[str]:
        return list(self.state.copy.get("local_edits") or []) if self.state.copy else []

    def edit_words(self) -> list[str]:
        """What became of the edits made to this copy, as far as the consumer records them."""
        if self.state.edits:
            return [edit.words(self.edge.policy) for edit in self.state.edits]
        said = []
        withheld = (self.state.copy or {}).get("withheld") or {}
        for column in self.local_edits:
            if column in withheld:
                said.append(
                    f"{column} edited here, kept: the owner's {withheld[column]!r} held back"
                )
            elif self.edge.policy.value == "local_wins":
                said.append(f"{column} edited here, kept against the owner's later changes")
            else:
                said.append(f"{column} edited here: the next owner change to it overwrites it")
        if self.state.lost_local_edits:
            lost = self.state.lost_local_edits
            said.append(
                f"{self.edge.name} has overwritten {lost} local edit{'s' if lost > 1 else ''} "
                "in all (owner_wins); none of them logged of this record"
            )
        return said

    def to_json(self) -> dict[str, Any]:
        return {
            "edge": self.edge.name,
            "consumer": self.edge.consumer,
            "mechanism": self.edge.mechanism.value,
            "schedule": self.edge.schedule,
            "follow": self.edge.follow,
            "running": self.running,
            "versions": [
                {
                    "version": a.change.version,
                    "op": a.change.op,
                    "changed_at": a.change.changed_at.isoformat(),
                    "outcome": a.outcome.value,
                    "arrived_at": a.arrived_at.isoformat() if a.arrived_at else None,
                    "lag_seconds": a.lag_seconds,
                    "run_at": a.wait.run_at.isoformat() if a.wait.run_at else None,
                    "due_at": a.wait.due_at.isoformat() if a.wait.due_at else None,
                    "failed_runs": a.wait.failed_runs,
                    "faults": [fault.to_json() for fault in a.faults],
                    "why": a.words(),
                }
                for a in self.arrivals
            ],
            "held": [
                {"since": h.since.isoformat(), "version": h.version, "op": h.op} for h in self.held
            ],
            "never_saw": self.never_saw,
            "local_edits": self.local_edits,
            "edits": self.edit_words(),
            "edit_log": [edit.to_json() for edit in self.state.edits],
            "retry": _retry_json(self.state),
            "faults": list(self.state.faults),
            "fault_windows": [window.to_json() for window in self.state.windows],
        }


def _retry_json(state: CopyState) -> dict[str, Any] | None:
    if not state.failures:
        return None
    return {
        "failures": state.failures,
        "retry_due_at": state.retry_due_at.isoformat() if state.retry_due_at else None,
        "retries_left": state.retries_left,
        "last_error": state.last_error,
    }


@dataclass(frozen=True)
class Trace:
    entity: str
    key: str
    at: datetime
    versions: tuple[OwnerChange, ...]
    hops: tuple[Hop, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "key": self.key,
            "at": self.at.isoformat(),
            "versions": [
                {
                    "owner": c.owner,
                    "version": c.version,
                    "op": c.op,
                    "changed_at": c.changed_at.isoformat(),
                }
                for c in self.versions
            ],
            "hops": [hop.to_json() for hop in self.hops],
        }


def when(at: datetime | None) -> str:
    """A simulated moment: to the minute, or to the second off the minute (a retry's)."""
    if at is None:
        return "never"
    return f"{at:%a %d %b %H:%M}" + (f":{at:%S}" if at.second else "")


def hop_edges(topology: Topology, entity: str) -> list[Edge]:
    """Every copy of the entity, in the order the lag module's journeys follow them."""
    journeys = default_journeys(topology)
    edges = [e for e in topology.edges if e.entity == entity and e.mechanism is not Mechanism.EVENT]
    order = [
        name
        for owner in topology.entity(entity).owners
        for name in journeys.get(f"{owner}.{entity}", ())
    ]
    return sorted(edges, key=lambda e: order.index(e.name) if e.name in order else len(order))


def trace(
    topology: Topology,
    logs: LagLogs,
    entity: str,
    key: str,
    at: datetime,
    states: Mapping[str, CopyState],
) -> Trace:
    """The key's trace up to `at`; `states` holds what each running consumer says, by edge."""
    owners = topology.entity(entity).owners
    versions = sorted(
        (c for c in logs.changes if c.entity == entity and c.key == key and c.owner in owners),
        key=lambda c: (c.changed_at, c.seq),
    )
    sorted_out = by_edge(logs, topology)
    hops = []
    for edge in hop_edges(topology, entity):
        if edge.name not in states:
            hops.append(Hop(edge, running=False))
            continue
        mine = _of_key(sorted_out.get(edge.name, EdgeLogs()), key, at)
        measured = EdgeMeasure(edge, mine, at, None)
        fates = sorted(measured.fates(), key=lambda f: f.change.seq)
        state = states[edge.name]
        arrivals = tuple(_arrival(edge, fate, fates, measured.runs, state, at) for fate in fates)
        hops.append(Hop(edge, True, arrivals, _held(mine.applied, versions), state))
    return Trace(entity, key, at, tuple(c for c in versions if c.changed_at <= at), tuple(hops))


def _of_key(logs: EdgeLogs, key: str, at: datetime) -> EdgeLogs:
    return EdgeLogs(
        [c for c in logs.changes if c.key == key],
        [r for r in logs.applied if r.key == key and r.applied_at <= at],
        logs.runs,
    )


def _arrival(
    edge: Edge,
    fate: Fate,
    fates: Sequence[Fate],
    runs: Sequence[Run],
    state: CopyState,
    at: datetime,
) -> Arrival:
    change = fate.change
    arrived = change.changed_at + timedelta(seconds=fate.lag) if fate.lag is not None else None
    brought = _run_at(runs, arrived) if arrived is not None else None
    mechanism = (
        brought.mechanism if brought else (runs[-1].mechanism if runs else edge.mechanism.value)
    )
    due = _due(edge, change.changed_at, state, at if arrived is None else None)
    # what kept it waiting matters only for a version that came, or has yet to come
    waiting = fate.outcome in (Outcome.DELIVERED, Outcome.PENDING)
    failed = [
        r
        for r in runs
        if waiting
        and r.finished_at is None
        and change.changed_at < r.started_at
        and (brought is None or r.started_at < brought.started_at)
    ]
    wait = Wait(
        edge.schedule,
        mechanism,
        due if waiting else None,
        brought.started_at if brought else None,
        full=brought.full if brought else False,
        on_schedule=brought is None or _on_schedule(edge, brought),
        failed_runs=len(failed),
        follow=edge.follow,
    )
    later = next(
        (
            f.change.version
            for f in fates
            if f.change.seq > change.seq and f.outcome is not Outcome.SUPERSEDED
        ),
        None,
    )
    # a fault is the cause only of a delay: the version missed a run that was due for it
    late = waiting and (
        bool(failed) or (due is not None and (brought.started_at if brought else at) > due)
    )
    faults = tuple(
        w for w in state.windows if late and w.overlaps(change.changed_at, arrived or at)
    )
    return Arrival(change, fate.outcome, arrived, fate.lag, wait, later, faults)


def _run_at(runs: Sequence[Run], moment: datetime) -> Run | None:
    """The run that was under way at `moment`: the last begun by then."""
    begun = [r for r in runs if r.started_at <= moment]
    return begun[-1] if begun else None


def _due(
    edge: Edge, after: datetime, state: CopyState, pending_at: datetime | None
) -> datetime | None:
    """The edge's first scheduled run after `after`; for a version still waiting at
    `pending_at`, the next run from then: a retry due, or the schedule's."""
    start = after if pending_at is None else pending_at
    times = [next_fire(s, start) for s in (edge.schedule, edge.full_sync_schedule) if s]
    if pending_at is not None and state.retry_due_at is not None:
        times.append(state.retry_due_at)
    return min(times, default=None)


def _on_schedule(edge: Edge, run: Run) -> bool:
    """Whether the run began at a moment of the edge's schedule (or its full sync's)."""
    crons = [cron for cron in (edge.schedule, edge.full_sync_schedule) if cron]
    return not crons or any(next_fire(c, run.started_at - TICK) == run.started_at for c in crons)


def _held(applied: Sequence[Applied], versions: Sequence[OwnerChange]) -> tuple[Held, ...]:
    """What the copy held from each applied row on: a versionless row holds what it read."""
    held = []
    for row in sorted(applied, key=lambda r: (r.applied_at, r.id)):
        version = row.version
        if version is None:
            read = [c.version for c in versions if c.changed_at <= row.read_at]
            version = read[-1] if read else None
        held.append(Held(row.applied_at, version, row.op))
    return tuple(held)


async def collect_trace(
    collector: LagCollector, entity: str, key: str, reading: Mapping[str, str]
) -> Trace:
    """The trace of one key on the running line the collector reads: its logs pulled (only what
    is new since the last collect), each copy read with the `reading` headers."""
    await collector.collect()
    control = collector.control
    topology = control.topology
    topology.entity(entity)  # an unknown entity is a KeyError before anything is read
    at = await control.now()
    states = {}
    for edge in hop_edges(topology, entity):
        if edge.consumer in collector.services:
            states[edge.name] = await _state(collector, edge, key, reading)
    return trace(topology, collector.logs, entity, key, at, states)


async def _state(
    collector: LagCollector, edge: Edge, key: str, reading: Mapping[str, str]
) -> CopyState:
    control = collector.control
    client = control.clients[edge.consumer]
    found = await client.get(f"/copies/{edge.entity}/{key}", headers=reading)
    copy = found.json() if found.status_code == httpx.codes.OK else None
    views = {v["edge"]: v for v in await control.read_admin(edge.consumer, "edges")}
    jobs = {j["name"]: j for j in await control.read_admin(edge.consumer, "jobs")}
    job = jobs.get(edge.name, {})
    faults = [
        f"{fault['kind']} on {service}" + (f" until {fault['until']}" if fault.get("until") else "")
        for service in (edge.owner, edge.consumer)
        if service in control.clients
        for fault in await control.read_admin(service, "faults")
        if fault.get("edge") in (None, edge.name)
    ]
    view = views.get(edge.name, {})
    due = job.get("retry_due_at")
    edits = await control.read_admin(
        edge.consumer, "local-edits", params={"edge": edge.name, "key": key}
    )
    return CopyState(
        copy,
        int(view.get("lost_local_edits") or 0),
        int(view.get("withheld_owner_changes") or 0),
        int(job.get("failures") or 0),
        datetime.fromisoformat(due) if due else None,
        job.get("retries_left"),
        job.get("last_error"),
        tuple(faults),
        tuple(_edit(row) for row in edits),
        tuple(
            [
                window
                for service in (edge.owner, edge.consumer)
                if service in control.clients
                for window in _windows(service, await control.read_admin(service, "faults/windows"))
                if _acts_on(window, edge)
            ]
        ),
    )


def _edit(row: Mapping[str, Any]) -> Edit:
    settled = row.get("settled_at")
    return Edit(
        row["column"],
        row["value"],
        datetime.fromisoformat(row["edited_at"]),
        row["outcome"],
        datetime.fromisoformat(settled) if settled else None,
        row.get("owner_value"),
        row.get("owner_version"),
    )


def _windows(service: str, rows: Sequence[Mapping[str, Any]]) -> list[FaultSpan]:
    return [
        FaultSpan(
            service,
            row["kind"],
            row.get("edge"),
            datetime.fromisoformat(row["began_at"]),
            datetime.fromisoformat(row["until"]) if row.get("until") else None,
        )
        for row in rows
    ]


def _acts_on(window: FaultSpan, edge: Edge) -> bool:
    """Whether a fault on one end could hold the edge's copies back: an owner's answers, or the
    consumer's own reads of this edge and its database."""
    serves = FaultKind(window.kind) in SERVER_FAULTS
    if window.service == edge.owner and serves:
        return True
    return window.service == edge.consumer and not serves and window.edge in (None, edge.name)
