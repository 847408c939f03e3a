"""The dashboard: the line as a live picture, served as HTML by the kernel, refreshed in pieces."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import httpx
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from serviceline.audit.findings import KeyDrift
from serviceline.audit.trace import when
from serviceline.dashboard.board import Board
from serviceline.dashboard.metrics import LineCollector
from serviceline.dashboard.process import DASHBOARD
from serviceline.dashboard.settings import DashboardSettings
from serviceline.dashboard.trace_page import trace_router
from serviceline.dashboard.views import (
    DRIFTING,
    SPANS,
    WORDS,
    EdgeView,
    ScenarioError,
    StudyError,
    by_state,
    chart,
    display_name,
    edge_history,
    edge_views,
    freshness,
    graph_view,
    history_charts,
    moment,
    read_scenario,
    read_study,
    row_counts,
    schedule_words,
    since,
    sparkline,
    state_of,
    supervision_words,
)
from serviceline.model.lines import current_line
from serviceline.model.topology import Edge, Mechanism, Service, Topology
from serviceline.runtime.clock import ClockError, parse_duration
from serviceline.scenarios.spec import format_duration
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import line_topology
from serviceline.telemetry.metrics import install
from serviceline.telemetry.tracing import Tracing

HERE = Path(__file__).parent
# the most differing records an edge's panel lists; the CLI's --json gives them all
SHOWN_KEYS = 100
WHY = {
    "missing": "the owner has it in scope; the copy lacks it",
    "orphaned": "the owner deleted it or it left the scope; the copy lives on",
    "stale": "a newer version waits at the owner, with the same values",
}


def get_board(request: Request) -> Board:
    board: Board = request.app.state.board
    return board


BoardDep = Annotated[Board, Depends(get_board)]
EdgeName = Annotated[str | None, Query(description="the selected edge, e.g. publish.course.apply")]
ServiceName = Annotated[str | None, Query(description="the selected service, e.g. publish")]
HistoryEdge = Annotated[
    str | None, Query(description="the edge whose drift over time is shown; every edge if none")
]
Span = Annotated[
    Literal["6h", "1d", "1w", "4w", "all"],
    Query(description="how far back drift over time is shown, on the simulated clock"),
]


@dataclass(frozen=True)
class DifferingField:
    """One field of one differing record, both values as the page shows them."""

    key: str
    drift: str
    field: str
    owner: str
    copy: str


def create_app(
    settings: DashboardSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    chosen = settings or DashboardSettings()
    config = chosen.line()
    topology = line_topology(config, current_line().topology)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(
        when=when,
        duration=format_duration,
        words=WORDS,
        moment=moment,
        schedule_words=schedule_words,
        supervision_words=supervision_words,
        # capitalised by its first letter only: the line's own name keeps its case
        line_heading=topology.called[:1].upper() + topology.called[1:],
    )

    # made here, as a service's: its instrumentation is middleware added before the app starts
    tracing = Tracing.start(DASHBOARD.name, chosen)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                service.name: await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=config.url(service),
                        timeout=300,
                        transport=(transports or {}).get(service.name),
                    )
                )
                for service in topology.services
            }
            if tracing is not None:  # what the dashboard reads goes on in the trace of its page
                for client in clients.values():
                    tracing.instrument_client(client)
            board = Board(chosen, topology, clients)
            app.state.board = board
            watching = asyncio.create_task(board.watch())
            try:
                yield
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
                await board.close()
                if tracing is not None:
                    await asyncio.to_thread(tracing.shutdown)

    app = FastAPI(
        title="serviceline dashboard",
        summary=f"{topology.called} as a live picture, with its drift on it",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.tracing = tracing
    if tracing is not None:
        tracing.instrument_app(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(trace_router(templates))

    async def refresh() -> None:
        # a scrape sees the line as it is now, as a first page load does: drift checked again
        # if the line may have changed, lag measured from the first scrape on
        board: Board | None = getattr(app.state, "board", None)
        if board is not None:
            board.scraped()
            await board.look()

    install(app, LineCollector(lambda: getattr(app.state, "board", None)), refresh=refresh)

    @app.get("/health")
    async def read_health() -> dict[str, Any]:
        # the process id tells whoever started the dashboard that it is this one answering
        return {"status": "ok", "service": "dashboard", "pid": os.getpid()}

    @app.get("/", response_class=HTMLResponse)
    async def read_page(request: Request, board: BoardDep, selection: SelectionDep) -> HTMLResponse:
        board.watched()
        await board.fresh()
        context = page_context(board, selection)
        return templates.TemplateResponse(request, "page.html", context)

    @app.get("/fragments", response_class=HTMLResponse)
    async def read_fragments(
        request: Request, board: BoardDep, selection: SelectionDep
    ) -> HTMLResponse:
        """The page's live regions alone, for the page's script to swap in."""
        board.watched()
        context = page_context(board, selection)
        return templates.TemplateResponse(request, "fragments.html", context)

    @app.get("/studies/last/{name:path}")
    async def read_study_file(board: BoardDep, name: str) -> FileResponse:
        """A file of the last study's results folder: its report, its charts, its CSVs."""
        return FileResponse(_study_file(board.settings.state_dir, name))

    @app.post("/clock/advance")
    async def advance_clock(
        board: BoardDep,
        by: Annotated[str, Query(description="how far, e.g. 1h, 1d, 1w")],
        edge: EdgeName = None,
        service: ServiceName = None,
    ) -> RedirectResponse:
        try:
            parse_duration(by)
        except ClockError as error:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"by: {error}") from error

        async def advance(control: LineControl) -> str:
            ran = await control.advance(by=by)
            failed = sum(1 for job in ran if not job["ok"])
            now = moment(await control.now())
            jobs = f"{len(ran)} job{'s' if len(ran) != 1 else ''} ran"
            return f"Moved the clock {by} on to {now}: {jobs}, {failed} failed."

        board.start(f"moving the clock {by} on", advance)
        return _back(edge, service)

    @app.post("/edges/run")
    async def run_edge(
        board: BoardDep,
        edge: Annotated[str, Query(description="the edge to run now")],
        service: ServiceName = None,
    ) -> RedirectResponse:
        chosen_edge = _edge(topology, edge)
        if chosen_edge.mechanism is Mechanism.EVENT:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"edge: {edge} copies on {chosen_edge.consumer}'s events; it has no run to start",
            )

        async def run(control: LineControl) -> str:
            stats = (await control.run_edge(chosen_edge))["result"]
            figures = ", ".join(
                f"{stats[k]} {k}" for k in ("fetched", "upserted", "deleted", "flagged")
            )
            return f"Ran {edge}: {figures}."

        board.start(f"running {edge}", run)
        return _back(edge, service)

    @app.post("/check")
    async def check_drift(
        board: BoardDep, edge: EdgeName = None, service: ServiceName = None
    ) -> RedirectResponse:
        async def check(_control: LineControl) -> str:
            return "Checked every edge's drift again."

        board.start("checking drift", check)
        return _back(edge, service)

    return app


def _back(edge: str | None, service: str | None) -> RedirectResponse:
    """To the page the action came from, with its selection; the page shows the outcome."""
    query = {name: value for name, value in (("edge", edge), ("service", service)) if value}
    url = "/?" + urlencode(query) if query else "/"
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _study_file(state_dir: Path, name: str) -> Path:
    try:
        study = read_study(state_dir)
    except StudyError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    if study is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no study has run here")
    folder = study.report.parent.resolve()
    path = (folder / name).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"name: the study wrote no {name!r}")
    return path


def _edge(topology: Topology, name: str) -> Edge:
    try:
        return topology.edge(name)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"edge: no edge named {name!r} (see `serviceline topology`)"
        ) from None


def _service(topology: Topology, name: str) -> Service:
    try:
        return topology.service(name)
    except KeyError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"service: no service named {name!r}"
        ) from None


@dataclass(frozen=True)
class Selection:
    """What the page is asked to show: an edge or a service, and which drift over time."""

    edge: str | None = None
    service: str | None = None
    history: str | None = None
    span: str = "1w"

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in (("edge", self.edge), ("service", self.service)) if v})


def selected(
    edge: EdgeName = None,
    service: ServiceName = None,
    history: HistoryEdge = None,
    span: Span = "1w",
) -> Selection:
    return Selection(edge, service, history, span)


SelectionDep = Annotated[Selection, Depends(selected)]


def page_context(board: Board, chosen: Selection) -> dict[str, Any]:
    """Everything the page's regions show, from what the board knows now."""
    topology = board.topology
    edge, service = chosen.edge, chosen.service
    selected_edge = _edge(topology, edge) if edge else None
    selected_service = _service(topology, service) if service else None
    running = list(board.running)
    views = edge_views(topology, board.report, running)
    if chosen.history and chosen.history not in views:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"history: no edge named {chosen.history!r}")
    samples = board.history.samples()
    grouped = by_state(views)
    try:
        scenario, scenario_problem = read_scenario(board.settings.state_dir), None
    except ScenarioError as error:
        scenario, scenario_problem = None, str(error)
    try:
        study, study_problem = read_study(board.settings.state_dir), None
    except StudyError as error:
        study, study_problem = None, str(error)
    shown = since(samples, chosen.span)
    query = chosen.query
    context: dict[str, Any] = {
        "board": board,
        "topology": topology,
        "graph": graph_view(topology, board.picture(row_counts(views)), views, running),
        "views": views,
        "by_state": grouped,
        "freshness": freshness(board.report.at if board.report else None, board.now),
        "selected_edge": selected_edge,
        "selected_service": selected_service,
        "selection": {"edge": edge, "service": service},
        "chosen": chosen,
        # the selection, for an action to come back to
        "back": f"&{query}" if query else "",
        "back_first": f"?{query}" if query else "",
        "spans": SPANS,
        "history_charts": history_charts(
            shown,
            [chosen.history] if chosen.history else [v.edge.name for _, vs in grouped for v in vs],
        ),
        "sparklines": {name: sparkline(samples, name) for name in views},
        "comparisons": [
            (
                c,
                state_of(c.counts),
                " and ".join(display_name(topology.service(s)) for s in c.services),
            )
            for c in (board.report.comparisons if board.report else [])
        ],
        "scenario": scenario,
        "scenario_problem": scenario_problem,
        "study": study,
        "study_problem": study_problem,
        "display_name": display_name,
        "drifting": DRIFTING,
    }
    if selected_edge is not None:
        view = views[selected_edge.name]
        times, series = edge_history(samples, selected_edge.name)
        context["edge_view"] = view
        context["edge_chart"] = (
            chart(times, series, {**WORDS, "lag": "changes waiting"}) if times else None
        )
        context["differences"] = _differences(view)
        context["more_keys"] = max(len(view.drift.keys) - SHOWN_KEYS, 0) if view.drift else 0
    if selected_service is not None:
        context["service_edges"] = {
            "in": [views[e.name] for e in topology.edges_into(selected_service.name)],
            "out": [views[e.name] for e in topology.edges_from(selected_service.name)],
        }
        context["service_url"] = board.settings.line().url(selected_service)
    return context


def _differences(view: EdgeView) -> list[DifferingField]:
    """The differing records of an edge, field by field with both values."""
    if view.drift is None:
        return []
    edge = view.edge
    rows = []
    for key in view.drift.keys[:SHOWN_KEYS]:
        rows += _key_rows(edge, key)
    return rows


def _key_rows(edge: Edge, key: KeyDrift) -> list[DifferingField]:
    if not key.differences:
        return [DifferingField(key.key, key.drift, "\N{EN DASH}", WHY.get(key.drift, ""), "")]
    return [
        DifferingField(
            key.key,
            key.drift,
            d.field,
            _value(d.values.get(edge.owner)),
            _value(d.values.get(edge.consumer)),
        )
        for d in key.differences
    ]


def _value(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value, default=str)
