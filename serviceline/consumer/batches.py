"""A consumer's copies written batch by batch, each change applied exactly once.

Every batch also writes what it applied to `kernel_applied` (one row per key upserted, deleted or
flagged: the owner's version when the reader carries one, when the owner's data was read and when
the batch committed) and its run's counts to `kernel_copy_run`, in the batch's own transaction, so
the log says exactly what the copy holds. A reader without versions leaves no row for a key whose
copied fields did not change; what the run read is still known, by this rule: a full run (a
snapshot, a full sync, a relist) holds, at its finish, every owner change committed by its
`started_at` to each key its copy then holds; an incremental run does so for the keys it saw,
which are those it applied plus those listed in its `seen` (kept only for readers without
versions: the others' rows say it all). docs/lag.md says how the lag is measured from this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import Engine, insert
from sqlmodel import Session, col, delete, select, update

from serviceline.consumer.readers import Page, SourceRecord
from serviceline.consumer.tables import (
    AppliedChange,
    Copy,
    CopyCursor,
    CopyRun,
    CopyTarget,
    LocalEdit,
    WantedKeys,
)
from serviceline.model.topology import Edge, Policy
from serviceline.owner.feed import FeedNotifier, attach
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import in_chunks, readonly, upsert
from serviceline.runtime.faults import Faults
from serviceline.runtime.upstream import Traffic
from serviceline.telemetry.tracing import Tracing


@dataclass(frozen=True)
class Settled:
    """What a batch did to an edit of one column: overwrote it, or kept the owner's value out."""

    key: str
    column: str
    outcome: str
    owner_value: Any
    owner_version: int | None


@dataclass
class CopyStats:
    edge: str
    mechanism: str
    pages: int = 0
    fetched: int = 0
    upserted: int = 0
    deleted: int = 0
    flagged: int = 0
    unchanged: int = 0
    relisted: bool = False
    cursor: str | None = None
    lost_local_edits: int = 0
    withheld_owner_changes: int = 0
    rejected: list[str] = field(default_factory=list)
    # the local edits this run met, for the edits' own log
    settled: list[Settled] = field(default_factory=list, repr=False)
    full: bool = False
    started_at: datetime | None = None
    requests: int = 0
    bytes: int = 0
    run_id: int | None = None
    # the traffic of the run so far, and the unchanged keys it saw that no applied row names
    traffic: Traffic = field(default_factory=Traffic, repr=False)
    seen: set[str] = field(default_factory=set, repr=False)

    def result(self) -> dict[str, Any]:
        """What the run reports: its counts, without what it keeps for its own log."""
        shown = asdict(self)
        del shown["traffic"], shown["seen"], shown["settled"]
        return shown

    # not made: the owner had not moved since a run that found nothing (Copier.skip)
    skipped: bool = False
    # a run told to take only the changes made by a moment: when the first one it left was made
    next_change_at: datetime | None = None

    def found_nothing(self) -> bool:
        changed = self.upserted or self.deleted or self.flagged or self.rejected or self.relisted
        return not (changed or self.lost_local_edits or self.withheld_owner_changes)


@dataclass(frozen=True)
class SkippedRun:
    """A poll the simulation did not make, logged as the real one it repeats would be."""

    edge: Edge
    stats: CopyStats
    # where the cursor moves, or None where it stays; a full run moves the last full sync
    position: str | None
    full: bool
    finished_at: datetime


class Batches:
    """Writes an edge's pages into the consumer's tables, one transaction each."""

    def __init__(
        self,
        *,
        engine: Engine,
        clock: SimulatedClock,
        targets: Mapping[str, CopyTarget],
        notifier: FeedNotifier | None = None,
        faults: Faults | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.targets = targets
        self.notifier = notifier
        self.faults = faults
        self.tracing = tracing

    def position(self, edge: Edge) -> str | None:
        with Session(readonly(self.engine)) as session:
            cursor = session.get(CopyCursor, edge.name)
            return None if cursor is None else cursor.position

    def apply(
        self,
        edge: Edge,
        page: Page,
        stats: CopyStats,
        *,
        now: datetime,
        position: str | None = None,
        relisting: bool = False,
    ) -> None:
        """Apply one page in one transaction, with its log, its run's figures and, where given,
        the cursor it brings the edge to."""
        target = self.targets[edge.entity]
        model = target.model
        key = edge.key_field
        key_column = getattr(model, key)
        # attached, so an after_apply that changes the consumer's own records logs them
        with (
            attach(Session(self.engine), self.clock, self.notifier) as session,
            contextlib.ExitStack() as traced,
        ):
            latest: dict[str, SourceRecord] = {}
            for record in page.records:
                if not _is_superseded(record, latest.get(record.key)):
                    latest[record.key] = record
            existing = {
                getattr(row, key): row
                for row in session.exec(select(model).where(col(key_column).in_(list(latest))))
            }
            rows: list[dict[str, Any]] = []
            gone: dict[str, int | None] = {}
            lost, withheld = stats.lost_local_edits, stats.withheld_owner_changes
            settled = len(stats.settled)
            for record_key, record in latest.items():
                current = existing.get(record_key)
                if _is_older(record, current, relisting=relisting):
                    stats.unchanged += 1
                    continue
                if record.deleted or not edge.scope.admits(record.fields):
                    if current is not None:
                        gone[record_key] = record.version
                    continue
                row = self._row(edge, model, record, now, current, stats)
                if row is None:
                    continue
                if current is not None and record.version is None and _same(current, row):
                    stats.unchanged += 1
                    if not relisting:
                        stats.seen.add(record_key)
                    continue
                rows.append(row)
            if page.partition is not None:
                column, value = page.partition
                gone.update(
                    (k, None)
                    for k in session.exec(select(key_column).where(getattr(model, column) == value))
                    if k not in latest
                )
            if self.tracing is not None:  # each write's changes applied in a span of its trace
                applied = [row[key] for row in rows] + list(gone)
                contexts = {str(k): latest[str(k)].traceparent for k in applied if str(k) in latest}
                traced.enter_context(self.tracing.applying(edge, contexts))
            # a Core upsert: the copies loaded before it keep the values they had
            upsert(session, model, rows, key)
            if target.after_apply is not None and rows:
                target.after_apply(session, rows, existing)
            applied_at = max(now, self.clock.now())
            _log_applied(
                session,
                edge,
                [(row[key], row["source_version"], "upsert") for row in rows],
                now,
                applied_at,
            )
            if self.faults is not None:
                self.faults.mid_batch(edge.name)
            stats.upserted += len(rows)
            self._remove(session, edge, target, gone, now, applied_at, stats)
            lost = stats.lost_local_edits - lost
            withheld = stats.withheld_owner_changes - withheld
            if lost or withheld:
                self._count(session, edge, lost, withheld)
            _log_settled(session, edge, stats.settled[settled:], applied_at)
            if position is not None:
                self._move_cursor(session, edge, position, now, full=False)
            self._count_run(session, stats)
            session.commit()

    def _row(
        self,
        edge: Edge,
        model: type[Copy],
        record: SourceRecord,
        now: datetime,
        current: Copy | None,
        stats: CopyStats,
    ) -> dict[str, Any] | None:
        values = edge.translate(record.fields)
        try:
            row = _validated(model, values)
        except ValidationError as error:
            stats.rejected.append(f"{record.key}: {error.errors()[0]['msg']}")
            return None
        local_edits, withheld = (
            ([], {}) if current is None else _settle(edge, record, current, row, stats)
        )
        row.update(
            source_version=record.version,
            copied_at=now,
            source_deleted_at=None,
            local_edits=local_edits,
            withheld=withheld,
        )
        return row

    def _remove(
        self,
        session: Session,
        edge: Edge,
        target: CopyTarget,
        keys: Mapping[str, int | None],
        now: datetime,
        applied_at: datetime,
        stats: CopyStats,
    ) -> None:
        """Delete these copies, or flag those the consumer's records still use; log each.

        `keys` gives the owner's version that removed each, None when none is known.
        """
        if not keys:
            return
        model = target.model
        key_column = col(getattr(model, edge.key_field))
        kept: set[str] = set()
        if edge.keep_referenced and target.referenced is not None:
            kept = target.referenced(session, list(keys))
        removed = [k for k in keys if k not in kept]
        # a copy flagged already is not flagged again: nothing changes in it
        flagged: list[str] = []
        for chunk in in_chunks([k for k in keys if k in kept]):
            flagged += session.exec(
                select(key_column).where(
                    key_column.in_(chunk), col(model.source_deleted_at).is_(None)
                )
            )
        for chunk in in_chunks(removed):
            session.exec(delete(model).where(key_column.in_(chunk)))
        for chunk in in_chunks(flagged):
            session.exec(update(model).where(key_column.in_(chunk)).values(source_deleted_at=now))
        logged = [(k, keys[k], "delete") for k in removed] + [(k, keys[k], "flag") for k in flagged]
        _log_applied(session, edge, logged, now, applied_at)
        stats.deleted += len(removed)
        stats.flagged += len(flagged)

    def finish(
        self,
        edge: Edge,
        stats: CopyStats,
        *,
        started: datetime,
        position: str | None,
        full: bool,
        seen: set[str] | None = None,
        finished: bool = False,
    ) -> None:
        """End a run's reading: remove the copies a full run did not see, move the cursor to
        `position` (else to when the run began), count the run."""
        target = self.targets[edge.entity]
        with Session(self.engine) as session:
            if seen is not None:
                keys = session.exec(select(col(getattr(target.model, edge.key_field))))
                vanished = dict.fromkeys(k for k in keys if k not in seen)
                now = max(started, self.clock.now())
                self._remove(session, edge, target, vanished, started, now, stats)
            self._move_cursor(session, edge, position or started.isoformat(), started, full=full)
            if stats.relisted:
                self._count_relist(session, edge)
            stats.cursor = position or started.isoformat()
            self._count_run(session, stats, finished=finished)
            session.commit()

    def _count_run(self, session: Session, stats: CopyStats, *, finished: bool = False) -> None:
        """Write the run's figures so far into the transaction committing its latest work."""
        run = None if stats.run_id is None else session.get(CopyRun, stats.run_id)
        if run is None:
            run = CopyRun(edge=stats.edge, mechanism=stats.mechanism, started_at=stats.started_at)
        for column, value in _figures(stats).items():
            setattr(run, column, value)
        if finished:
            run.finished_at = max(stats.started_at or self.clock.now(), self.clock.now())
        session.add(run)
        session.flush()
        stats.run_id = run.id

    def log_skipped(self, runs: list[SkippedRun]) -> None:
        """Log polls not made, in one transaction: each moves its cursor and counts its run."""
        with Session(self.engine) as session:
            for run in runs:
                if run.position is None:
                    continue
                cursor = session.get(CopyCursor, run.edge.name) or CopyCursor(edge=run.edge.name)
                cursor.position = run.position
                cursor.last_sync_at = run.stats.started_at
                if run.full:
                    cursor.last_full_sync_at = run.stats.started_at
                session.add(cursor)
            rows = [
                {
                    "edge": run.stats.edge,
                    "mechanism": run.stats.mechanism,
                    "started_at": run.stats.started_at,
                    "finished_at": run.finished_at,
                    **_figures(run.stats),
                }
                for run in runs
            ]
            # the table's own insert: one statement for the runs of a whole advance
            session.execute(insert(CopyRun.__table__), rows)  # type: ignore[attr-defined]
            session.commit()

    def close(self, stats: CopyStats, *, finished: bool) -> None:
        """The run's last figures: what it spent after its last commit, and whether it finished."""
        with Session(self.engine) as session:
            self._count_run(session, stats, finished=finished)
            session.commit()

    @staticmethod
    def _count(session: Session, edge: Edge, lost: int, withheld: int) -> None:
        cursor = session.get(CopyCursor, edge.name) or CopyCursor(edge=edge.name)
        cursor.lost_local_edits += lost
        cursor.withheld_owner_changes += withheld
        session.add(cursor)
        session.flush()

    @staticmethod
    def _count_relist(session: Session, edge: Edge) -> None:
        cursor = session.get_one(CopyCursor, edge.name)
        cursor.relists += 1
        session.add(cursor)
        session.flush()

    @staticmethod
    def _move_cursor(
        session: Session, edge: Edge, position: str, at: datetime, *, full: bool
    ) -> None:
        cursor = session.get(CopyCursor, edge.name) or CopyCursor(edge=edge.name)
        cursor.position = position
        cursor.last_sync_at = at
        if full:
            cursor.last_full_sync_at = at
        session.add(cursor)
        session.flush()

    def wanted(self, wanted: WantedKeys) -> list[str]:
        with Session(readonly(self.engine)) as session:
            return wanted(session)


_NOTHING = object()


def _figures(stats: CopyStats) -> dict[str, Any]:
    """A run's counts as its CopyRun row holds them; its traffic so far becomes its cost."""
    stats.requests, stats.bytes = stats.traffic.requests, stats.traffic.bytes
    return {
        "full": stats.full,
        "requests": stats.requests,
        "bytes": stats.bytes,
        "fetched": stats.fetched,
        "upserted": stats.upserted,
        "deleted": stats.deleted,
        "flagged": stats.flagged,
        "found_nothing": not (stats.upserted or stats.deleted or stats.flagged),
        "skipped": stats.skipped,
        "seen": sorted(stats.seen) or None,
    }


def _log_applied(
    session: Session,
    edge: Edge,
    changes: list[tuple[str, int | None, str]],
    read_at: datetime,
    applied_at: datetime,
) -> None:
    """One row per (key, version, op) a batch applied: one statement for the whole batch."""
    if not changes:
        return
    rows = [
        {
            "edge": edge.name,
            "key": str(key),
            "version": version,
            "op": op,
            "read_at": read_at,
            "applied_at": applied_at,
        }
        for key, version, op in changes
    ]
    # the table's own insert: an entity's would go through the ORM's bulk path, row by row
    session.execute(insert(AppliedChange.__table__), rows)  # type: ignore[attr-defined]


def _validated(model: type[Copy], values: dict[str, Any]) -> dict[str, Any]:
    """`model.model_validate(values).model_dump(include=set(values))`, at a tenth of the cost.

    A table model's model_validate sets every field again through SQLAlchemy's instrumentation
    for a mapped instance the copier throws away; the same validator and serializer run here on
    an instance the mapper never sees. A model validator may want a mapped instance: not here.
    """
    if model.__pydantic_decorators__.model_validators:
        return model.model_validate(values).model_dump(include=set(values))
    checked = model.__new__(model)
    model.__pydantic_validator__.validate_python(values, self_instance=checked)
    row: dict[str, Any] = model.__pydantic_serializer__.to_python(checked, include=set(values))
    return row


def _settle(
    edge: Edge, record: SourceRecord, current: Copy, row: dict[str, Any], stats: CopyStats
) -> tuple[list[str], dict[str, Any]]:
    """Apply the edge's policy to the columns edited here; `row` becomes what is stored.

    Returns the columns still edited here and the owner's values they keep out.
    """
    kept: list[str] = []
    withheld: dict[str, Any] = {}
    for column in current.local_edits:
        local = getattr(current, column)
        if row[column] == local:
            kept.append(column)
        elif edge.policy is Policy.LOCAL_WINS:
            owners = to_jsonable_python(row[column])
            # a snapshot re-reads the same owner value at every sync: count it the first time
            if current.withheld.get(column, _NOTHING) != owners:
                stats.withheld_owner_changes += 1
                stats.settled.append(Settled(record.key, column, "kept", owners, record.version))
            withheld[column] = owners
            row[column] = local
            kept.append(column)
        else:
            stats.lost_local_edits += 1
            owners = to_jsonable_python(row[column])
            stats.settled.append(Settled(record.key, column, "overwritten", owners, record.version))
    return kept, withheld


def _log_settled(session: Session, edge: Edge, settled: list[Settled], at: datetime) -> None:
    """Mark each edit a batch met with what became of it; only a batch that met one pays."""
    for done in settled:
        session.execute(
            update(LocalEdit)
            .where(
                col(LocalEdit.edge) == edge.name,
                col(LocalEdit.key) == done.key,
                col(LocalEdit.column) == done.column,
                col(LocalEdit.outcome).in_(("held", "kept")),
            )
            .values(
                outcome=done.outcome,
                settled_at=at,
                owner_value=done.owner_value,
                owner_version=done.owner_version,
            )
        )


def _is_older(record: SourceRecord, current: Copy | None, *, relisting: bool) -> bool:
    """A redelivered or reordered change: the copy already holds this version or a later one.

    A relisting reads the owner as it is now, so a copy that claims a later version than the
    owner holds is wrong there, and is put right rather than kept for ever.
    """
    if current is None or record.version is None or current.source_version is None:
        return False
    if relisting:
        return record.version == current.source_version
    return record.version <= current.source_version


def _is_superseded(record: SourceRecord, seen: SourceRecord | None) -> bool:
    """Within a page the newest version wins, or the later record when there are no versions."""
    return (
        seen is not None
        and record.version is not None
        and seen.version is not None
        and record.version < seen.version
    )


def _same(current: Copy, row: dict[str, Any]) -> bool:
    ignored = {"copied_at", "local_edits"}
    return all(
        getattr(current, name) == value for name, value in row.items() if name not in ignored
    )
