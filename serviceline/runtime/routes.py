"""Routes every service gets from the kernel: health, feed, records, copies and admin."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import anyio
import orjson
from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, model_validator
from sqlalchemy import Row
from sqlmodel import Session, SQLModel, col, func, select

from serviceline.consumer.tables import AppliedChange, CopyCursor, CopyRun, LocalEdit, log_edit
from serviceline.model.credentials import Rule
from serviceline.model.fields import MAX_INT, UtcDateTime
from serviceline.model.topology import KERNEL_READER, Edge
from serviceline.owner.feed import ChangeLog, Owned, changes_since, head, prune, pruned_through
from serviceline.runtime.bodies import UnstorableInputError, check_storable
from serviceline.runtime.clock import ClockError, parse_duration
from serviceline.runtime.db import JobRun
from serviceline.runtime.deps import (
    AdminAuth,
    BearerDep,
    ClockDep,
    Kernel,
    KernelDep,
    SessionDep,
    authorize,
)
from serviceline.runtime.scheduler import Job, JobResult, UnknownJobError
from serviceline.runtime.settings import ClockMode

health_router = APIRouter(tags=["health"])
feed_router = APIRouter(tags=["feed"])
copies_router = APIRouter(tags=["copies"])
admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminAuth])


class Health(BaseModel):
    status: str
    service: str
    now: datetime


@health_router.get("/health")
def read_health(kernel: KernelDep) -> Health:
    return Health(status="ok", service=kernel.name, now=kernel.clock.now())


class Change(BaseModel):
    seq: int
    key: str
    op: str
    version: int
    changed_at: datetime | None
    record: dict[str, Any] | None
    # left out while unknown: a line that does not trace serves its feed as it always did
    traceparent: str | None = Field(
        default=None,
        exclude_if=lambda context: context is None,
        description="the W3C trace context of the write that made the change, while the owner "
        "traces",
    )


CHANGE_FIELDS = tuple(Change.model_fields)


class FeedPage(BaseModel):
    entity: str
    changes: list[Change]
    next: int
    has_more: bool


class RecordsPage(BaseModel):
    entity: str
    records: list[dict[str, Any]]
    next_after: str | None
    head: int


def _owned(kernel: Kernel, entity: str) -> type[Owned]:
    model = kernel.owned.get(entity)
    if model is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"{kernel.name} owns no entity {entity!r}; it owns {sorted(kernel.owned)}",
        )
    return model


@dataclass(frozen=True)
class _Changes:
    """A page of the change log as read, each record still the JSON text the log stores."""

    rows: list[Row[Any]]
    cursor: int
    has_more: bool

    def body(self, entity: str) -> bytes:
        """The page as FeedPage's JSON: a record is passed on as stored, not parsed and dumped
        again, which cost as much as reading the page."""
        changes = [_change(dict(row._mapping)) for row in self.rows]
        page = {"entity": entity, "changes": changes, "next": self.cursor}
        return orjson.dumps({**page, "has_more": self.has_more}, option=orjson.OPT_UTC_Z)


def _change(change: dict[str, Any]) -> dict[str, Any]:
    """One change as Change serializes it: its record passed on as stored."""
    if change["record"] is not None:
        change["record"] = orjson.Fragment(change["record"])
    if change["traceparent"] is None:
        del change["traceparent"]
    return change


def _feed_page(kernel: Kernel, entity: str, since: int, limit: int) -> _Changes:
    with kernel.session(writes=False) as session:
        oldest = pruned_through(session)
        if since < oldest:
            raise HTTPException(
                status.HTTP_410_GONE,
                f"cursor {since} is older than the retained feed (pruned through {oldest}): "
                f"relist /records/{entity} and resume from its head",
            )
        read = changes_since(session, entity, since, limit, CHANGE_FIELDS, as_stored={"record"})
        return _Changes(*read)


def guard_records(entity: str, kernel: KernelDep, request: Request, bearer: BearerDep) -> None:
    """A personal entity's feed and records: for the consumers copying it, operator, auditor."""
    _owned(kernel, entity)
    if kernel.topology.entity(entity).personal:
        rule = Rule(f"{kernel.name}'s {entity} records", reads=(entity, KERNEL_READER))
        authorize(kernel, request, bearer, rule)


def guard_copies(entity: str, kernel: KernelDep, request: Request, bearer: BearerDep) -> None:
    """A consumer's copies of a personal entity: its operator's and the auditor's to read."""
    _copy_edge(kernel, entity)
    if kernel.topology.entity(entity).personal:
        authorize(kernel, request, bearer, Rule(f"{kernel.name}'s copies of {entity}"))


RecordsAuth = Depends(guard_records)
CopiesAuth = Depends(guard_copies)


@feed_router.get("/feed/{entity}", dependencies=[RecordsAuth], response_model=FeedPage)
async def read_feed(
    entity: str,
    kernel: KernelDep,
    since: int = Query(0, ge=0, le=MAX_INT, description="the `next` of the previous page"),
    limit: int = Query(500, ge=1, le=5000),
    wait: float = Query(0, ge=0, le=60, description="long-poll: seconds to wait for a change"),
    *,
    request: Request,
) -> Response:
    _owned(kernel, entity)
    deadline = anyio.current_time() + wait
    while True:
        changed = kernel.notifier.watch()
        page = await to_thread.run_sync(_feed_page, kernel, entity, since, limit)
        remaining = deadline - anyio.current_time()
        # a reader that hangs up (a follower stopping) is waited for no longer
        if (
            page.rows
            or remaining <= 0
            or not await kernel.notifier.wait_unless_gone(changed, remaining, request)
        ):
            return Response(page.body(entity), media_type="application/json")


@feed_router.get("/records/{entity}", dependencies=[RecordsAuth])
def list_records(
    entity: str,
    kernel: KernelDep,
    session: SessionDep,
    after: str | None = Query(None, description="the `next_after` of the previous page"),
    limit: int = Query(500, ge=1, le=5000),
    # inclusive: on the simulated clock a write can share its moment with the poll before it
    updated_since: UtcDateTime | None = None,
) -> RecordsPage:
    model = _owned(kernel, entity)
    key = col(getattr(model, model.key_field))
    top = head(session)
    query = select(model).order_by(key).limit(limit + 1)
    if after is not None:
        query = query.where(key > after)
    if updated_since is not None:
        query = query.where(col(model.updated_at) >= updated_since)
    rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return RecordsPage(
        entity=entity,
        records=[row.feed_record() for row in rows],
        next_after=rows[-1].key if more else None,
        head=top,
    )


class CopiesPage(BaseModel):
    entity: str
    owner: str
    copies: list[dict[str, Any]]
    next_after: str | None


def _copy_edge(kernel: Kernel, entity: str) -> Edge:
    for edge in kernel.copier.edges.values():
        if edge.entity == entity:
            return edge
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"{kernel.name} keeps no copy of {entity!r}")


def _copy_model(kernel: Kernel, entity: str) -> tuple[type[Any], str, str]:
    edge = _copy_edge(kernel, entity)
    return kernel.copier.targets[entity].model, edge.key_field, edge.owner


@copies_router.get("/copies/{entity}", dependencies=[CopiesAuth])
def list_copies(
    entity: str,
    kernel: KernelDep,
    session: SessionDep,
    after: str | None = None,
    limit: int = Query(500, ge=1, le=5000),
) -> CopiesPage:
    model, key_field, owner = _copy_model(kernel, entity)
    key = col(getattr(model, key_field))
    query = select(model).order_by(key).limit(limit + 1)
    if after is not None:
        query = query.where(key > after)
    rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return CopiesPage(
        entity=entity,
        owner=owner,
        copies=[row.model_dump(mode="json") for row in rows],
        next_after=str(getattr(rows[-1], key_field)) if more else None,
    )


@copies_router.get("/copies/{entity}/{key}", dependencies=[CopiesAuth])
def read_copy(entity: str, key: str, kernel: KernelDep, session: SessionDep) -> dict[str, Any]:
    model, _, owner = _copy_model(kernel, entity)
    row = session.get(model, key)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no copy of {entity} {key!r} here (owner: {owner})"
        )
    copied: dict[str, Any] = row.model_dump(mode="json")
    return copied


async def copy_changes(entity: str, kernel: KernelDep, request: Request) -> dict[str, Any]:
    """A write's body, read only where the edge lets users edit their copy: else refused unread."""
    edge = _copy_edge(kernel, entity)
    if not edge.editable:
        _refuse_write(kernel, edge, [])
    try:
        body = json.loads(await request.body())
        check_storable(body, ["body"])
    except UnstorableInputError as error:
        raise RequestValidationError(error.detail()) from error
    except ValueError:
        body = None
    if not isinstance(body, dict):
        problem = {"type": "dict_type", "loc": ["body"], "msg": "give a JSON object"}
        raise RequestValidationError([problem])
    return body


CopyChanges = Annotated[dict[str, Any], Depends(copy_changes)]
AN_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}


@copies_router.patch("/copies/{entity}/{key}", openapi_extra={"requestBody": AN_OBJECT})
def update_copy(
    entity: str,
    key: str,
    body: CopyChanges,
    kernel: KernelDep,
    session: SessionDep,
    request: Request,
    bearer: BearerDep,
) -> dict[str, Any]:
    """Change the edge's editable columns of one copy, here only: the owner never hears of it."""
    edge = _copy_edge(kernel, entity)
    refused = sorted(set(body) - edge.editable)
    if refused:
        _refuse_write(kernel, edge, refused)
    authorize(kernel, request, bearer, Rule(f"{kernel.name}'s copies of {entity}"))
    if not body:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"body: give one or more of {sorted(edge.editable)}",
        )
    model = kernel.copier.targets[entity].model
    row = session.get(model, key)
    if row is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no copy of {entity} {key!r} here (owner: {edge.owner})"
        )
    try:
        checked = model.model_validate({**row.model_dump(), **body})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{field}: {first['msg']}"
        ) from error
    for column in body:
        setattr(row, column, getattr(checked, column))
    row.local_edits = sorted({*row.local_edits, *body})
    log_edit(
        session,
        edge,
        key,
        {column: getattr(checked, column) for column in body},
        kernel.clock.now(),
    )
    # a snapshot would overwrite the edit: its next run is not one that finds nothing
    kernel.copier.edited(edge.name)
    session.add(row)
    session.flush()
    session.refresh(row)
    edited: dict[str, Any] = row.model_dump(mode="json")
    return edited


@copies_router.api_route("/copies/{entity}", methods=["POST"], include_in_schema=False)
@copies_router.api_route(
    "/copies/{entity}/{key}", methods=["PUT", "DELETE"], include_in_schema=False
)
def refuse_copy_write(entity: str, kernel: KernelDep) -> None:
    _refuse_write(kernel, _copy_edge(kernel, entity), [])


def _refuse_write(kernel: Kernel, edge: Edge, columns: list[str]) -> NoReturn:
    entity, owner = edge.entity, edge.owner
    which = f"{', '.join(columns)}: " if columns else ""
    editable = (
        f" Only {sorted(edge.editable)} may be changed here, and only on this copy."
        if edge.editable
        else ""
    )
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"{which}{entity} is owned by {owner}; {kernel.name} holds a read-only copy and never "
        f"passes changes back. Change it in {owner}, and {kernel.name} will learn of it at its "
        f"next sync.{editable}",
    )


class ClockView(BaseModel):
    service: str
    now: datetime
    mode: str
    speed: float
    # the cycle this service's reads of an owner ask for (Publish's API v1 is by cycle)
    recruitment_cycle_year: int
    next_due: datetime | None
    next_job: str | None
    next_visible_due: datetime | None
    # later, where copies known to find nothing come first: it holds while the owners stay at
    # `unmoved_heads`, the heads told to the advance it answers
    next_visible_if_unmoved: datetime | None
    unmoved_heads: dict[str, int]
    # this service's change-log head: a consumer whose last run saw it has nothing new to read;
    # None while faults are set here
    head: int | None
    # its copies may change its own records (an after_apply), so its head may move while it
    # advances: whoever reads it is told its head only once it has advanced
    copies_change_records: bool
    # moves with every write to this service's records and copies (WriteMark); None while
    # faults are set here, since they change what a read answers without any write
    written: str | None
    # since the service started: wall seconds its jobs worked, requests it sent upstream
    work_seconds: float
    requests: int


# a few recruitment cycles: each job due in between runs, so a century would run for days
LONGEST_ADVANCE = timedelta(days=5 * 366)


class Advance(BaseModel):
    to: UtcDateTime | None = None
    by: str | None = None
    stop_short: bool = Field(False, description="leave the jobs due at `to` itself for later")
    until_visible: bool = Field(
        False,
        description="end before a job that would change what other services see, if one "
        "falls due first; the clock waits at the last job run",
    )
    heads: dict[str, int] = Field(
        default_factory=dict,
        description="owners' change-log heads known to hold until this advance ends",
    )

    @model_validator(mode="after")
    def one_of(self) -> Advance:
        if (self.to is None) == (self.by is None):
            raise ValueError("give exactly one of 'to' (a time) or 'by' (e.g. 10m, 6h, 1d)")
        return self


class Advanced(BaseModel):
    now: datetime
    next_due: datetime | None
    next_visible_due: datetime | None
    next_visible_if_unmoved: datetime | None
    unmoved_heads: dict[str, int]
    ran: list[dict[str, Any]]
    head: int | None
    work_seconds: float
    requests: int


def _clock_view(kernel: Kernel) -> ClockView:
    upcoming = kernel.scheduler.next_due()
    heads = dict(kernel.copier.heads)
    return ClockView(
        service=kernel.name,
        now=kernel.clock.now(),
        mode=kernel.clock.mode.value,
        speed=kernel.clock.speed,
        recruitment_cycle_year=kernel.settings.recruitment_cycle_year,
        next_due=upcoming[0] if upcoming else None,
        next_job=upcoming[1].name if upcoming else None,
        next_visible_due=kernel.scheduler.next_visible(),
        next_visible_if_unmoved=kernel.scheduler.next_visible(quiet=True) if heads else None,
        unmoved_heads=heads,
        head=_head(kernel),
        copies_change_records=kernel.copier.changes_own_records,
        written=None if kernel.faults.listed() else kernel.writes.mark,
        work_seconds=kernel.scheduler.work_seconds,
        requests=sum(upstream.requests for upstream in kernel.upstreams.values()),
    )


def _head(kernel: Kernel) -> int | None:
    if kernel.faults.listed():
        return None
    with kernel.session(writes=False) as session:
        return head(session)


@admin_router.get("/clock")
def read_clock(kernel: KernelDep) -> ClockView:
    return _clock_view(kernel)


@admin_router.post("/clock/advance")
async def advance_clock(body: Advance, kernel: KernelDep, clock: ClockDep) -> Advanced:
    if clock.mode is ClockMode.REALTIME:
        raise ClockError("the clock runs in realtime mode: it moves by itself, not on request")
    if body.by is not None:
        try:
            target = clock.now() + parse_duration(body.by)
        except (ValueError, OverflowError) as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"by: {error}") from error
    else:
        assert body.to is not None
        target = body.to
    if target < clock.now():
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"to: {target.isoformat()} is before the clock ({clock.now().isoformat()})",
        )
    if target - clock.now() > LONGEST_ADVANCE:
        field = "by" if body.by is not None else "to"
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{field}: one advance covers at most {LONGEST_ADVANCE.days} days; move in steps",
        )
    async with kernel.copier.knowing(body.heads):
        ran = await kernel.scheduler.advance(
            target, stop_short=body.stop_short, until_visible=body.until_visible
        )
        # while the heads are known: which of the copies due next would find nothing
        view = await to_thread.run_sync(_clock_view, kernel)
    return Advanced(
        now=view.now,
        next_due=view.next_due,
        next_visible_due=view.next_visible_due,
        next_visible_if_unmoved=view.next_visible_if_unmoved,
        unmoved_heads=view.unmoved_heads,
        ran=[_result(r) for r in ran],
        head=view.head,
        work_seconds=view.work_seconds,
        requests=view.requests,
    )


def _result(result: JobResult) -> dict[str, Any]:
    data = asdict(result)
    data["due_at"] = result.due_at.isoformat()
    return data


class JobView(BaseModel):
    name: str
    schedule: str | None
    due_at: datetime | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    # failed runs in a row since the last that worked, and the retry that is due next
    failures: int = 0
    retry_due_at: datetime | None = None
    retries_left: int | None = None  # None: the job is not retried


def _retries_left(job: Job, failures: int) -> int | None:
    if job.retry is None:
        return None
    # the first failure is the run itself; each one after it used a retry
    return max(0, job.retry.retries - max(0, failures - 1))


@admin_router.get("/jobs")
def list_jobs(kernel: KernelDep, session: SessionDep) -> list[JobView]:
    runs = kernel.scheduler.history(session)
    views = []
    for job in kernel.scheduler.jobs:
        run = runs.get(job.name)
        retry = kernel.scheduler.retries.get(job.name)
        failures = retry.failures if retry else 0
        views.append(
            JobView(
                name=job.name,
                schedule=job.schedule,
                due_at=kernel.scheduler.due_at(job),
                last_run_at=run.last_run_at if run else None,
                last_success_at=run.last_success_at if run else None,
                last_error=run.last_error if run else None,
                failures=failures,
                retry_due_at=retry.due if retry else None,
                retries_left=_retries_left(job, failures),
            )
        )
    return views


@admin_router.post("/jobs/{name}/run")
async def run_job(name: str, kernel: KernelDep) -> dict[str, Any]:
    try:
        result = await kernel.scheduler.run_now(name)
    except UnknownJobError as error:
        known = [job.name for job in kernel.scheduler.jobs]
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{kernel.name} has no job {name!r}; jobs: {known}"
        ) from error
    if not result.ok:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"{name} failed: {result.error}")
    return _result(result)


class EdgeView(BaseModel):
    edge: str
    owner: str
    entity: str
    mechanism: str
    schedule: str | None  # None: the consumer's own events drive the edge, or it follows
    # the consumer follows its owner's change feed (long-poll) rather than polling it on a cron
    follow: bool = False
    position: str | None
    last_sync_at: datetime | None
    last_full_sync_at: datetime | None
    # the last run that succeeded (a quiet poll too), and the last change any run applied
    last_run_at: datetime | None
    last_change_at: datetime | None
    copies: int
    policy: str
    editable: list[str]
    lost_local_edits: int
    withheld_owner_changes: int
    # how often the owner had pruned the feed past the cursor and the edge relisted everything
    relists: int


def _last_run(session: Session, edge: Edge) -> datetime | None:
    runs = [session.get(JobRun, name) for name in (edge.name, f"{edge.name}:full")]
    done = [run.last_success_at for run in runs if run is not None and run.last_success_at]
    return max(done, default=None)


@admin_router.get("/edges")
def list_edges(kernel: KernelDep, session: SessionDep) -> list[EdgeView]:
    views = []
    for edge in kernel.copier.edges.values():
        cursor = session.get(CopyCursor, edge.name)
        model = kernel.copier.targets[edge.entity].model
        count = session.exec(select(func.count()).select_from(model)).one()
        views.append(
            EdgeView(
                edge=edge.name,
                owner=edge.owner,
                entity=edge.entity,
                mechanism=edge.mechanism.value,
                schedule=edge.schedule,
                follow=edge.follow,
                position=cursor.position if cursor else None,
                last_sync_at=cursor.last_sync_at if cursor else None,
                last_full_sync_at=cursor.last_full_sync_at if cursor else None,
                last_run_at=_last_run(session, edge),
                last_change_at=session.exec(
                    select(func.max(AppliedChange.applied_at)).where(
                        AppliedChange.edge == edge.name
                    )
                ).one(),
                copies=count,
                policy=edge.policy.value,
                editable=sorted(edge.editable),
                lost_local_edits=cursor.lost_local_edits if cursor else 0,
                withheld_owner_changes=cursor.withheld_owner_changes if cursor else 0,
                relists=cursor.relists if cursor else 0,
            )
        )
    return views


@admin_router.post("/edges/{owner}/{entity}/run")
async def run_edge(
    owner: str, entity: str, kernel: KernelDep, full: bool = False
) -> dict[str, Any]:
    """Run the copy of `entity` from `owner` now, off schedule."""
    name = f"{owner}.{entity}.{kernel.name}"
    if name not in kernel.copier.edges:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"{kernel.name} has no edge {name!r}; edges: {sorted(kernel.copier.edges)}",
        )
    return await run_job(f"{name}:full" if full else name, kernel)


class Prune(BaseModel):
    keep: int


@admin_router.post("/feed/prune")
def prune_feed(body: Prune, session: SessionDep) -> dict[str, int]:
    if body.keep < 0:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "keep: must be 0 or more")
    return {"pruned": prune(session, body.keep), "pruned_through": pruned_through(session)}


class LoggedChange(BaseModel):
    seq: int
    entity: str
    key: str
    version: int
    op: str
    changed_at: datetime | None


class ChangelogPage(BaseModel):
    changes: list[LoggedChange]
    next: int
    has_more: bool


class AppliedView(BaseModel):
    id: int
    edge: str
    key: str
    version: int | None
    op: str
    read_at: datetime | None
    applied_at: datetime | None


class AppliedPage(BaseModel):
    applied: list[AppliedView]
    next: int
    has_more: bool


class CopyRunView(BaseModel):
    id: int
    edge: str
    mechanism: str
    full: bool
    started_at: datetime | None
    finished_at: datetime | None
    requests: int
    bytes: int
    fetched: int
    upserted: int
    deleted: int
    flagged: int
    found_nothing: bool
    skipped: bool
    seen: list[str] | None


class CopyRunsPage(BaseModel):
    runs: list[CopyRunView]
    next: int
    has_more: bool


Logged = TypeVar("Logged", bound=SQLModel)
After = Query(0, ge=0, le=MAX_INT, description="the `next` of the previous page")
Limit = Query(1000, ge=1, le=5000)


def _logged_after(
    session: Session, model: type[Logged], order: Any, after: int, limit: int
) -> tuple[list[Logged], bool]:
    """A page of a log kept in id order: the rows after `after`, and whether more follow."""
    rows = list(session.exec(select(model).where(order > after).order_by(order).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


@admin_router.get("/changelog")
def list_changelog(session: SessionDep, after: int = After, limit: int = Limit) -> ChangelogPage:
    """What this service changed of the records it owns, in commit order, without the records."""
    rows, more = _logged_after(session, ChangeLog, col(ChangeLog.seq), after, limit)
    changes = [LoggedChange.model_validate(row, from_attributes=True) for row in rows]
    return ChangelogPage(changes=changes, next=changes[-1].seq if changes else after, has_more=more)


@admin_router.get("/applied")
def list_applied(session: SessionDep, after: int = After, limit: int = Limit) -> AppliedPage:
    """Every key this service's copies took in, with the owner's version and when."""
    rows, more = _logged_after(session, AppliedChange, col(AppliedChange.id), after, limit)
    applied = [AppliedView.model_validate(row, from_attributes=True) for row in rows]
    return AppliedPage(applied=applied, next=applied[-1].id if applied else after, has_more=more)


class LocalEditView(BaseModel):
    edge: str
    key: str
    column: str
    value: Any
    edited_at: datetime | None
    outcome: str
    settled_at: datetime | None
    owner_value: Any
    owner_version: int | None


@admin_router.get("/local-edits")
def list_local_edits(
    session: SessionDep,
    edge: Annotated[
        str, Query(description="one of this service's edges, e.g. gias.school.placements")
    ],
    key: Annotated[str, Query(description="the copy's key at its owner")],
) -> list[LocalEditView]:
    """The edits made here to one copy, and what the edge's policy made of each since."""
    rows = session.exec(
        select(LocalEdit)
        .where(col(LocalEdit.edge) == edge, col(LocalEdit.key) == key)
        .order_by(col(LocalEdit.id))
    )
    return [LocalEditView.model_validate(row, from_attributes=True) for row in rows]


@admin_router.get("/copy-runs")
def list_copy_runs(session: SessionDep, after: int = After, limit: int = Limit) -> CopyRunsPage:
    """Every run of this service's edges: what it cost and what it found."""
    rows, more = _logged_after(session, CopyRun, col(CopyRun.id), after, limit)
    runs = [CopyRunView.model_validate(row, from_attributes=True) for row in rows]
    return CopyRunsPage(runs=runs, next=runs[-1].id if runs else after, has_more=more)
