"""/metrics: a service's figures in Prometheus's exposition format.

The copy and change-log figures are read from the service's own logs (`kernel_copy_run`,
`kernel_copy_cursor`, `kernel_changelog`) when Prometheus scrapes, not counted along the way:
they are what the database holds, exact after a restart, and the copier does not know of them.
Only the HTTP figures are counted as requests pass, since no table keeps them. Each app has its
own registry: several services run in one test process. Nothing is labelled per record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serviceline.consumer.tables import CopyCursor, CopyRun
from serviceline.owner.feed import ChangeLog, head, pruned_through
from serviceline.runtime.db import readonly
from serviceline.runtime.deps import Kernel

PREFIX = "serviceline"
# a request no route answered: labelled once, whatever its path, so a scan adds no series
UNMATCHED = "unmatched"
APPLIED_OPS = ("upsert", "delete", "flag")

metrics_router = APIRouter(tags=["health"])


@dataclass(frozen=True)
class HttpMetrics:
    """Requests as they pass: by method, route template and status."""

    requests: Counter
    seconds: Histogram

    @classmethod
    def register(cls, registry: CollectorRegistry) -> HttpMetrics:
        return cls(
            Counter(
                f"{PREFIX}_http_requests",
                "HTTP requests answered, by method, route template and status",
                ["method", "route", "status"],
                registry=registry,
            ),
            Histogram(
                f"{PREFIX}_http_request_duration_seconds",
                "Wall seconds from a request's arrival to its last byte, by method and route",
                ["method", "route"],
                registry=registry,
            ),
        )


class HttpMetricsMiddleware:
    """Counts every HTTP request once it is answered, under the template of the route it hit."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # an error no handler answered reaches the client as a 500
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            method = str(scope["method"])
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.seconds.labels(method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template the router matched (`/copies/{entity}/{key}`), never the path."""
    route = scope.get("route")
    if isinstance(route, Mount):
        return f"{route.path}/{{path}}"
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


Refresh = Callable[[], Awaitable[None]]


def install(
    app: FastAPI, *collectors: Collector, refresh: Refresh | None = None
) -> CollectorRegistry:
    """A registry for this app alone, its HTTP figures counted by middleware, and /metrics;
    `refresh` brings the figures up to date before each scrape is answered."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics.register(registry))
    app.state.metrics = registry
    app.state.metrics_refresh = refresh
    app.include_router(metrics_router)
    return registry


def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.metrics
    return registry


RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def read_metrics(request: Request, registry: RegistryDep) -> Response:
    """Every figure of this process, in Prometheus's text exposition format."""
    refresh: Refresh | None = request.app.state.metrics_refresh
    if refresh is not None:
        await refresh()
    # collecting reads the database: off the event loop
    body = await to_thread.run_sync(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class ServiceCollector(Collector):
    """A service's clock, change log and copy edges, read from its database at each scrape."""

    def __init__(self, kernel: Callable[[], Kernel | None]) -> None:
        # the kernel exists once the app's lifespan has begun; before that nothing is served
        self.kernel = kernel

    def describe(self) -> list[Metric]:
        # nothing to check at registration: the families depend on the service's tables
        return []

    def collect(self) -> Iterator[Metric]:
        kernel = self.kernel()
        if kernel is None:
            return
        yield from _clock(kernel)
        with Session(readonly(kernel.engine)) as session:
            if kernel.owned:
                yield from _change_log(session)
            if kernel.copier.edges:
                yield from _edges(kernel, session)


def kernel_of(app: FastAPI) -> Callable[[], Kernel | None]:
    def kernel() -> Kernel | None:
        found: Kernel | None = getattr(app.state, "kernel", None)
        return found

    return kernel


def _clock(kernel: Kernel) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"{PREFIX}_clock_timestamp_seconds",
        "The service's simulated clock, as seconds since the Unix epoch",
        value=kernel.clock.now().timestamp(),
    )
    yield CounterMetricFamily(
        f"{PREFIX}_scheduler_work_seconds",
        "Wall seconds this process has spent inside the jobs the clock ran",
        value=kernel.scheduler.work_seconds,
    )


def _change_log(session: Session) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"{PREFIX}_changelog_head",
        "The last seq the owner's change log handed out (pruning leaves it where it is)",
        value=head(session),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}_changelog_pruned_through",
        "The seq up to which the change log was pruned: a cursor behind it is relisted",
        value=pruned_through(session),
    )
    entries = GaugeMetricFamily(
        f"{PREFIX}_changelog_entries",
        "Changes the owner's log still holds, by entity",
        labels=["entity"],
    )
    counted = session.exec(
        select(ChangeLog.entity, func.count()).group_by(col(ChangeLog.entity))
    ).all()
    for entity, count in sorted(counted):
        entries.add_metric([entity], count)
    yield entries


@dataclass
class _EdgeFigures:
    """One edge's figures as its runs and cursor give them."""

    finished: int = 0
    failed: int = 0
    empty: int = 0
    skipped: int = 0
    full: int = 0
    fetched: int = 0
    requests: int = 0
    bytes: int = 0
    upserted: int = 0
    deleted: int = 0
    flagged: int = 0


def _edges(kernel: Kernel, session: Session) -> Iterator[Metric]:
    names = sorted(kernel.copier.edges)
    figures = {name: _EdgeFigures() for name in names}
    for edge, row in _run_sums(session, in_flight=_in_flight(kernel, session)):
        if edge in figures:
            figures[edge] = row
    cursors = {cursor.edge: cursor for cursor in session.exec(select(CopyCursor))}
    retried: dict[str, int] = dict.fromkeys(names, 0)
    in_a_row: dict[str, int] = dict.fromkeys(names, 0)
    for job, count in dict(kernel.scheduler.retried).items():
        edge = job.removesuffix(":full")
        if edge in retried:
            retried[edge] += count
    for job, retry in dict(kernel.scheduler.retries).items():
        edge = job.removesuffix(":full")
        if edge in in_a_row and retry.due is not None:
            in_a_row[edge] = max(in_a_row[edge], retry.failures)

    def family(kind: type[Any], name: str, doc: str, value: Callable[[str], float]) -> Metric:
        metric = kind(f"{PREFIX}_copy_{name}", doc, labels=["edge"])
        for edge in names:
            metric.add_metric([edge], value(edge))
        return metric  # type: ignore[no-any-return]

    runs = CounterMetricFamily(
        f"{PREFIX}_copy_runs",
        "Copy runs by outcome: finished, or failed part way (a run going on is not yet counted)",
        labels=["edge", "outcome"],
    )
    applied = CounterMetricFamily(
        f"{PREFIX}_copy_records_applied",
        "Records a copy took in, by what it did: upsert, delete, or flag (kept, as its owner "
        "deleted it while this service's own records use it)",
        labels=["edge", "op"],
    )
    for edge in names:
        runs.add_metric([edge, "finished"], figures[edge].finished)
        runs.add_metric([edge, "failed"], figures[edge].failed)
        for op, count in zip(
            APPLIED_OPS,
            (figures[edge].upserted, figures[edge].deleted, figures[edge].flagged),
            strict=True,
        ):
            applied.add_metric([edge, op], count)
    yield runs
    yield applied
    counters = CounterMetricFamily
    for name, attribute, doc in RUN_COUNTERS:
        yield family(counters, name, doc, partial(_attribute_of, figures, attribute))
    yield family(
        counters,
        "retries",
        "Runs that were retries of a failed one, with back-off on the simulated clock",
        lambda e: retried[e],
    )
    yield family(
        GaugeMetricFamily,
        "consecutive_failures",
        "Failed runs in a row with a retry still to come (0: the last run worked)",
        lambda e: in_a_row[e],
    )
    for name, attribute, doc in CURSOR_COUNTERS:
        yield family(counters, name, doc, partial(_attribute_of, cursors, attribute))
    yield family(
        GaugeMetricFamily,
        "last_sync_timestamp_seconds",
        "When the copy last read its owner, on the simulated clock (0: never)",
        lambda e: _stamp(cursors[e].last_sync_at) if e in cursors else 0,
    )
    yield family(
        GaugeMetricFamily,
        "records",
        "Copies the service holds",
        lambda e: _copies(kernel, session, e),
    )


# (metric, figure of the edge's copy runs, help)
RUN_COUNTERS = (
    (
        "empty_runs",
        "empty",
        "Finished copy runs that changed nothing in the copy (skipped polls among them)",
    ),
    (
        "skipped_runs",
        "skipped",
        "Polls not made, as the simulation knew they would find nothing; each is counted in "
        "the runs and costs what the last real one did",
    ),
    (
        "full_runs",
        "full",
        "Copy runs that listed everything: a snapshot, a full sync, a first read or a relist",
    ),
    ("records_fetched", "fetched", "Records the copy runs read from the owner"),
    ("requests", "requests", "Requests the copy runs made to the owner"),
    ("received_bytes", "bytes", "Response body bytes the copy runs received from the owner"),
)
# (metric, counter of the edge's cursor, help)
CURSOR_COUNTERS = (
    (
        "lost_local_edits",
        "lost_local_edits",
        "Local edits to copies that the owner's next change overwrote (owner_wins)",
    ),
    (
        "withheld_owner_changes",
        "withheld_owner_changes",
        "Owner changes a local edit kept out of the copy (local_wins)",
    ),
    (
        "relists",
        "relists",
        "Times the owner had pruned its log past the cursor, so everything was listed again",
    ),
)


def _attribute_of(rows: Mapping[str, Any], attribute: str, edge: str) -> float:
    """One figure of an edge's row, 0 where the edge has none yet."""
    row = rows.get(edge)
    return 0.0 if row is None else float(getattr(row, attribute))


def _in_flight(kernel: Kernel, session: Session) -> set[int]:
    """Runs that may still be going: each edge's latest unfinished one, while a job runs."""
    if not kernel.scheduler.busy and not kernel.copier.running:
        return set()
    latest = session.exec(select(func.max(CopyRun.id)).group_by(col(CopyRun.edge))).all()
    unfinished = session.exec(
        select(CopyRun.id).where(col(CopyRun.id).in_(latest), col(CopyRun.finished_at).is_(None))
    ).all()
    return {run for run in unfinished if run is not None}


def _run_sums(session: Session, in_flight: set[int]) -> Iterable[tuple[str, _EdgeFigures]]:
    """Each edge's runs summed in one statement: one row per run is all the table holds."""
    done = col(CopyRun.finished_at).is_not(None)
    going = col(CopyRun.id).in_(in_flight) if in_flight else None

    def count(*conditions: Any) -> Any:
        where = conditions if going is None else (*conditions, ~going)
        return func.sum(case((and_(*where), 1), else_=0))

    rows = session.exec(
        select(  # type: ignore[call-overload]
            CopyRun.edge,
            count(done),
            count(~done),
            count(done, col(CopyRun.found_nothing)),
            count(done, col(CopyRun.skipped)),
            count(done, col(CopyRun.full)),
            func.sum(CopyRun.fetched),
            func.sum(CopyRun.requests),
            func.sum(CopyRun.bytes),
            func.sum(CopyRun.upserted),
            func.sum(CopyRun.deleted),
            func.sum(CopyRun.flagged),
        ).group_by(col(CopyRun.edge))
    ).all()
    for edge, *sums in rows:
        yield edge, _EdgeFigures(*(int(value or 0) for value in sums))


def _copies(kernel: Kernel, session: Session, edge: str) -> int:
    model = kernel.copier.targets[kernel.copier.edges[edge].entity].model
    return int(session.exec(select(func.count()).select_from(model)).one())


def _stamp(moment: Any) -> float:
    return 0.0 if moment is None else float(moment.timestamp())
