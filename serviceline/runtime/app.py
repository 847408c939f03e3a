"""The app factory: every service is this, given its routers, tables and settings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlmodel import Session, SQLModel
from swagger_ui_bundle import swagger_ui_path

from serviceline.audit.checksum_routes import checksum_router
from serviceline.audit.checksums import HashedSide, RowHash
from serviceline.consumer.copier import Copier
from serviceline.consumer.follow import Follower
from serviceline.consumer.tables import COPIER_TABLES, CopyTarget
from serviceline.model.credentials import Credentials, presented
from serviceline.model.topology import Mechanism, Topology
from serviceline.owner.feed import ChangeLog, FeedNotifier, Owned, prune
from serviceline.runtime.bodies import StorableInputMiddleware
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import JobRun, KernelState, WriteMark, create_tables, make_engine
from serviceline.runtime.deps import Kernel
from serviceline.runtime.errors import add_error_handlers, document_errors
from serviceline.runtime.fault_routes import FaultMiddleware, fault_router
from serviceline.runtime.faults import Faults, FaultWindow, close_windows
from serviceline.runtime.routes import admin_router, copies_router, feed_router, health_router
from serviceline.runtime.scheduler import Job, RetryPolicy, Scheduler
from serviceline.runtime.settings import ClockMode, ServiceSettings
from serviceline.runtime.upstream import Upstream
from serviceline.telemetry.lineage import lineage_for
from serviceline.telemetry.metrics import ServiceCollector, install, kernel_of
from serviceline.telemetry.tracing import Tracing, add_context_column

JobFactory = Callable[[Kernel], Job]


def create_app(
    name: str,
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter] = (),
    tables: Sequence[type[SQLModel]] = (),
    copies: Mapping[str, CopyTarget] | None = None,
    jobs: Sequence[JobFactory] = (),
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    topology: Topology,
) -> FastAPI:
    service = topology.service(name)
    owned = {
        model.entity: model
        for model in tables
        if issubclass(model, Owned) and getattr(model, "__table__", None) is not None
    }
    line = topology.with_overrides(settings.edge_overrides)
    read_through = settings.reads_through()
    # the line as this service runs it: its edges read as overridden, none for what it reads live
    topology = line.reading_through(name, read_through)
    copy_targets = {e: target for e, target in (copies or {}).items() if e not in read_through}
    # this app's own: made here, since its instrumentation is middleware added before it starts
    tracing = Tracing.start(name, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url_for(name))
        kernel_tables: list[type[SQLModel]] = [ChangeLog, *COPIER_TABLES]
        kernel_tables += [HashedSide, RowHash, FaultWindow]
        models = [*kernel_tables, *tables]
        models += [target.model for target in copy_targets.values()]
        create_tables(engine, models)
        add_context_column(engine)
        clock = SimulatedClock.from_settings(settings)
        faults = Faults(clock)
        faults.bind(engine)
        bookkeeping: list[type[SQLModel]] = [*kernel_tables, KernelState, JobRun]
        writes = WriteMark(frozenset(str(model.__tablename__) for model in bookkeeping))
        writes.bind(engine)
        notifier = FeedNotifier()
        notifier.bind(asyncio.get_running_loop())
        upstreams = {
            upstream: Upstream.connect(
                upstream,
                settings.upstreams.get(
                    upstream, f"http://127.0.0.1:{topology.service(upstream).port}"
                ),
                token=presented(name, upstream, settings.upstream_tokens),
                transport=(transports or {}).get(upstream),
            )
            for upstream in line.upstreams(name)
        }
        if tracing is not None:
            for upstream in upstreams.values():
                tracing.instrument_client(upstream.client)
        # each copy run's OpenLineage events, when the settings name an endpoint or a file
        lineage = lineage_for(settings) if copy_targets else None
        copier = Copier(
            service=name,
            topology=topology,
            engine=engine,
            clock=clock,
            upstreams=upstreams,
            targets=copy_targets,
            year=settings.recruitment_cycle_year,
            page_size=settings.page_size,
            notifier=notifier,
            faults=faults,
            skip_quiet_polls=settings.skip_quiet_polls,
            tracing=tracing,
            lineage=lineage,
        )
        scheduler = Scheduler(engine, clock, [], settings.clock_start)
        kernel = Kernel(
            name,
            settings,
            topology,
            engine,
            clock,
            notifier,
            upstreams,
            owned,
            copier,
            scheduler,
            faults,
            Credentials.derive(name, line, settings),
            writes,
            tracing=tracing,
        )
        followers = {
            edge.name: Follower(copier, scheduler, clock, edge)
            for edge in copier.edges.values()
            if edge.follow
        }
        scheduler.jobs.extend(_edge_jobs(kernel, followers))
        scheduler.jobs.extend(factory(kernel) for factory in jobs)
        if owned:
            scheduler.jobs.append(Job("feed.prune", "0 4 * * *", partial(_prune, kernel)))
        scheduler.load()
        with Session(engine) as session:  # the faults a process held ended with it
            close_windows(session, clock.now())
            session.commit()
        app.state.kernel = kernel
        running: list[asyncio.Task[None]] = []
        if settings.clock_mode is ClockMode.REALTIME:
            running.append(asyncio.create_task(_run_realtime(kernel)))
            # each followed feed parks on its owner's long-poll; under a manual clock the
            # clock's own moves run it instead (serviceline.consumer.follow)
            running += [asyncio.create_task(f.follow_forever()) for f in followers.values()]
        try:
            yield
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for upstream in upstreams.values():
                await upstream.aclose()
            if lineage is not None:  # what the runs sent and is still on its way
                await asyncio.to_thread(lineage.close)
            engine.dispose()
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)

    app = FastAPI(
        title=service.title,
        summary=f"serviceline: the {name} service of {topology.called}",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _serve_docs(app)
    app.add_middleware(FaultMiddleware)
    app.add_middleware(StorableInputMiddleware)
    # outermost: a request a fault or a refused body answers is counted too
    install(app, ServiceCollector(kernel_of(app)))
    app.include_router(health_router)
    app.include_router(admin_router)
    app.include_router(fault_router)
    app.include_router(checksum_router)
    if owned:
        app.include_router(feed_router)
    if copy_targets:
        app.include_router(copies_router)
    for router in routers:
        app.include_router(router)
    if tracing is not None:
        tracing.instrument_app(app)
    add_error_handlers(app)
    document_errors(app)
    return app


@dataclass(frozen=True, kw_only=True)
class ServiceApp:
    """A service of a line, declared once: what the app factory builds its process from."""

    name: str
    settings: type[ServiceSettings] = ServiceSettings
    routers: Sequence[APIRouter] = ()
    tables: Sequence[type[SQLModel]] = ()
    copies: Mapping[str, CopyTarget] = field(default_factory=dict)
    jobs: Sequence[JobFactory] = ()
    # the service's own refusals in its real API's shapes, over the kernel's
    error_handlers: Sequence[Callable[[FastAPI], None]] = ()

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper().replace('-', '_')}_"

    def settings_from_env(self) -> ServiceSettings:
        return self.settings(_env_prefix=self.env_prefix)

    def create_app(
        self,
        settings: ServiceSettings | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        *,
        topology: Topology,
    ) -> FastAPI:
        app = create_app(
            self.name,
            settings or self.settings_from_env(),
            routers=self.routers,
            tables=self.tables,
            copies=self.copies,
            jobs=self.jobs,
            transports=transports,
            topology=topology,
        )
        for add_handlers in self.error_handlers:
            add_handlers(app)
        return app


def _serve_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served from here: many users of the line are offline."""
    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def read_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )


def _edge_jobs(kernel: Kernel, followers: Mapping[str, Follower]) -> list[Job]:
    jobs = []
    for edge in kernel.copier.edges.values():
        if edge.mechanism is Mechanism.EVENT:
            continue
        follower = followers.get(edge.name)
        if follower is not None:  # never on a cron: it follows its owner's feed
            jobs.append(follower.job())
        for name, schedule, full in (
            *([] if follower is not None else [(edge.name, edge.schedule, False)]),
            (f"{edge.name}:full", edge.full_sync_schedule, True),
        ):
            run = partial(_copy, kernel, edge.name, full)
            retry = RetryPolicy(edge.retries)
            # invisible even where a follow-up writes what others copy (Apply's course copy
            # touching applications): within one advance a reader may take such a write up at a
            # run after its moment; a step at each of Apply's runs would cost every advance more
            quiet = partial(kernel.copier.finds_nothing, edge.name, full)
            jobs.append(Job(name, schedule, run, visible=False, retry=retry, quiet=quiet))
    return jobs


async def _run_realtime(kernel: Kernel) -> None:
    # the clock's own advances, as one long advance: jobs of one moment share their walks
    async with kernel.copier.knowing({}):
        await kernel.scheduler.run_realtime()


async def _copy(kernel: Kernel, edge: str, full: bool) -> dict[str, Any]:
    return (await kernel.copier.run(edge, full=full)).result()


async def _prune(kernel: Kernel) -> dict[str, int]:
    def run() -> int:
        with kernel.session() as session:
            pruned = prune(session, kernel.settings.feed_retention)
            session.commit()
            return pruned

    return {"pruned": await asyncio.to_thread(run)}
