"""The tables every consumer keeps beside its copies: how far each edge is read, what each batch
applied, each run's figures and the local edits of its copies; and where each entity's copies are
kept."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import JSON, Index, insert
from sqlmodel import Field, Session, SQLModel, col, update

from serviceline.model.topology import Edge
from serviceline.runtime.db import json_field, stamp_field, utc_field


class Copy(SQLModel):
    """A row copied from its owner: what version it came from, when, and what was edited here."""

    source_version: int | None = None
    copied_at: datetime | None = utc_field()
    source_deleted_at: datetime | None = utc_field()
    local_edits: list[str] = json_field()
    # the owner's values a local edit keeps out (local_wins), by column: each is counted once
    withheld: dict[str, Any] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    # new on every write of the row, so a checksum kept for it knows when it is out of date
    stamp: int | None = stamp_field()


class CopyCursor(SQLModel, table=True):
    """How far a consumer has read an edge; moved in the same transaction as what it read."""

    __tablename__ = "kernel_copy_cursor"
    edge: str = Field(primary_key=True)
    position: str | None = None
    last_sync_at: datetime | None = utc_field()
    last_full_sync_at: datetime | None = utc_field()
    # what the edge's local-edit policy has cost so far, counted with the page that cost it
    lost_local_edits: int = 0
    withheld_owner_changes: int = 0
    # how often the owner had pruned the changes after this cursor, so everything was relisted
    relists: int = 0


class AppliedChange(SQLModel, table=True):
    """One key a batch changed in the copy: the owner's version, when it was read and applied."""

    __tablename__ = "kernel_applied"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    edge: str = Field(index=True)
    key: str
    # None: the reader carries no versions; the copy holds the owner's record as of `read_at`
    version: int | None = None
    op: str  # upsert, delete or flag (kept, but marked as deleted by its owner)
    read_at: datetime | None = utc_field()
    applied_at: datetime | None = utc_field()


class LocalEdit(SQLModel, table=True):
    """One column of one copy edited here, and what the edge's policy made of the edit since.

    Written with the edit and settled in the batch that meets it, so a trace can say of each
    edit whether the owner's next change overwrote it (owner_wins) or it kept one out
    (local_wins), and which version did.
    """

    __tablename__ = "kernel_local_edit"
    __table_args__ = (
        Index("ix_kernel_local_edit_key", "edge", "key"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True)
    edge: str
    key: str
    column: str
    value: Any = Field(default=None, sa_type=JSON, nullable=True)
    edited_at: datetime | None = utc_field()
    # held: the copy still has it; overwritten: the owner's value replaced it; kept: it keeps
    # the owner's value out; replaced: a later edit here of the same column
    outcome: str = "held"
    settled_at: datetime | None = utc_field()
    owner_value: Any = Field(default=None, sa_type=JSON, nullable=True)
    owner_version: int | None = None


class CopyRun(SQLModel, table=True):
    """One run of an edge: what it cost and what it found, counted with each batch it committed."""

    __tablename__ = "kernel_copy_run"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    edge: str = Field(index=True)
    mechanism: str
    full: bool = False  # it listed everything
    started_at: datetime | None = utc_field()
    finished_at: datetime | None = utc_field()  # None: the run failed part way
    requests: int = 0
    bytes: int = 0  # response bodies received
    fetched: int = 0
    upserted: int = 0
    deleted: int = 0
    flagged: int = 0
    found_nothing: bool = True
    # a poll the fast clock knew would find nothing, counted as the last real one cost
    skipped: bool = False
    # keys an incremental run of a reader without versions saw unchanged (none applied)
    seen: list[str] | None = Field(default=None, sa_type=JSON)


# the tables every consumer keeps for its copier, beside the copies themselves
COPIER_TABLES: tuple[type[SQLModel], ...] = (CopyCursor, AppliedChange, CopyRun, LocalEdit)
ReferencedKeys = Callable[[Session, Collection[str]], set[str]]
WantedKeys = Callable[[Session], list[str]]
# the rows a page wrote, and the copies they replaced as those stood before it, by key
AfterApply = Callable[[Session, list[dict[str, Any]], Mapping[str, Copy]], None]


@dataclass(frozen=True)
class CopyTarget:
    """Where a consumer keeps one entity's copies, and which of them its own records still use."""

    model: type[Copy]
    referenced: ReferencedKeys | None = None
    # the owner keys to read one by one, for an owner that can only be asked per key
    wanted: WantedKeys | None = None
    # the consumer's own follow-up to a page of copies, in the same transaction (the real
    # services overwrite their own records from what they copied, e.g. a mentor's names)
    after_apply: AfterApply | None = None


def log_edit(
    session: Session, edge: Edge, key: str, values: Mapping[str, Any], at: datetime
) -> None:
    """Log a local edit of these columns; an earlier edit of one of them is replaced by it."""
    session.execute(
        update(LocalEdit)
        .where(
            col(LocalEdit.edge) == edge.name,
            col(LocalEdit.key) == key,
            col(LocalEdit.column).in_(list(values)),
            col(LocalEdit.outcome).in_(("held", "kept")),
        )
        .values(outcome="replaced", settled_at=at)
    )
    session.execute(
        insert(LocalEdit),
        [
            {
                "edge": edge.name,
                "key": key,
                "column": column,
                "value": to_jsonable_python(value),
                "edited_at": at,
            }
            for column, value in values.items()
        ],
    )
