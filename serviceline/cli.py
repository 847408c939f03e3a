"""The `serviceline` command: start the line, seed it, drive its clock, run its copies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serviceline.audit.drift import (
    Auditor,
    DriftReport,
    EdgeDrift,
    exceeded,
    history_rows,
    read_history,
    record_history,
    render_html,
)
from serviceline.audit.findings import CLASSES
from serviceline.audit.lag import LagCollector
from serviceline.audit.trace import Hop, Trace, collect_trace, when
from serviceline.dashboard.process import RunningDashboard, start_dashboard
from serviceline.declared.spec import schema
from serviceline.model.lines import Size, UnknownLineError, current_line, is_line_file, line_name
from serviceline.model.topology import Edge, Kind, Mechanism, edge_name
from serviceline.output import console as terminal
from serviceline.runtime.clock import ClockError, parse_duration
from serviceline.runtime.settings import ClockMode
from serviceline.runtime.upstream import bearer
from serviceline.scenarios.cli import scenario_app
from serviceline.scenarios.spec import format_duration
from serviceline.stack.compose import COMPOSE_FILE, StackSource
from serviceline.stack.compose import write as write_stack
from serviceline.stack.control import ControlError, LineControl
from serviceline.stack.launcher import (
    LaunchError,
    LineConfig,
    RunningLine,
    attach,
    recorded_offset,
    start_line,
    stop_recorded,
)
from serviceline.stack.supervision import ServiceState, SupervisionError
from serviceline.studies.cli import study_app

app = typer.Typer(
    help="serviceline: a service line whose services copy data one way, and the drift it causes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
clock_app = typer.Typer(help="Read and move the line's simulated clock.", no_args_is_help=True)
app.add_typer(clock_app, name="clock")
app.add_typer(scenario_app, name="scenario")
app.add_typer(study_app, name="study")
console = terminal()
T = TypeVar("T")

StateDir = Annotated[
    Path, typer.Option(envvar="SERVICELINE_STATE_DIR", help="where databases and logs live")
]
Host = Annotated[str, typer.Option(envvar="SERVICELINE_HOST", help="the services' host")]
AdminToken = Annotated[str, typer.Option(envvar="SERVICELINE_ADMIN_TOKEN", help="admin API token")]
ApiToken = Annotated[str, typer.Option(envvar="SERVICELINE_API_TOKEN", help="write API token")]
AuditorToken = Annotated[
    str, typer.Option(envvar="SERVICELINE_AUDITOR_TOKEN", help="the auditor's read token")
]
SizeOption = Annotated[Size, typer.Option(help="how much data: small, medium or large")]
SeedOption = Annotated[int, typer.Option(help="random seed: the same number gives the same data")]


PortOffset = Annotated[
    int | None,
    typer.Option(
        envvar="SERVICELINE_PORT_OFFSET",
        help="add this to every service's port: a second line beside the first "
        "(by default, that of the line running from --state-dir, else none)",
        show_default=False,
    ),
]


LineOption = Annotated[
    str,
    typer.Option(
        "--line",
        envvar="SERVICELINE_LINE",
        help="the line to run: a registered line's name or a line file (.yaml); "
        "by default the one line installed",
        show_default=False,
    ),
]


@app.callback()
def main(
    ctx: typer.Context,
    port_offset: PortOffset = None,
    state_dir: StateDir = Path(".state"),
    line: LineOption = "",
) -> None:
    # a line started with --port-offset is reached again without it, as its URLs were printed
    ctx.obj = port_offset if port_offset is not None else recorded_offset(state_dir) or 0
    if line:
        # --line is the SERVICELINE_LINE setting: for this process's LineSettings, and for
        # every process it starts (a line file by its absolute path)
        os.environ["SERVICELINE_LINE"] = str(Path(line).resolve()) if is_line_file(line) else line
    try:
        current_line()
    except UnknownLineError as error:
        fail(str(error))


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


@contextlib.asynccontextmanager
async def connect(
    host: str, admin_token: str, port_offset: int = 0, *, service_hosts: bool = False
) -> AsyncIterator[tuple[dict[str, httpx.AsyncClient], LineControl]]:
    """Clients for the services that are running: the record systems run only when asked."""
    where = LineConfig(Path(), host, port_offset=port_offset, service_hosts=service_hosts)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            s.name: await stack.enter_async_context(
                httpx.AsyncClient(base_url=where.url(s), timeout=300)
            )
            for s in current_line().topology.services
        }
        answers = await asyncio.gather(
            *(_healthy(client) for client in clients.values()), return_exceptions=False
        )
        running = {name: c for (name, c), ok in zip(clients.items(), answers, strict=True) if ok}
        if not running:
            raise httpx.ConnectError(f"no service answers on {host}")
        yield running, LineControl(running, admin_token, current_line().topology)


async def _healthy(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/health", timeout=2)).status_code == 200
    except httpx.TransportError:
        return False


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run async work, turning the line's refusals into one clear line instead of a traceback."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except (ControlError, ClockError) as error:
        fail(str(error))
    except httpx.TransportError as error:
        fail(f"cannot reach the line ({error!r}); start it with `make up`")
    raise AssertionError("unreachable")


def seed_with_progress(
    host: str,
    admin_token: str,
    api_token: str,
    size: Size,
    seed: int,
    port_offset: int = 0,
    *,
    service_hosts: bool = False,
    if_new: bool = False,
) -> dict[str, int]:
    """What was seeded, by kind; nothing when `if_new` and the line already holds a seed."""
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, Any] = {}

        def report(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = progress.add_task(task, total=total)
            progress.update(tasks[task], completed=done, total=total)

        async def work() -> dict[str, int]:
            line = connect(host, admin_token, port_offset, service_hosts=service_hosts)
            async with line as (clients, control):
                if await current_line().already_seeded(clients, api_token):
                    if if_new:
                        return {}
                    # a second seed's keys (URNs, provider codes) are the first one's
                    raise ControlError(
                        "the line already holds a seed; `serviceline up --fresh --size SIZE` "
                        "starts it again with another"
                    )
                seed_line = current_line().seed
                return await seed_line(clients, control, api_token, size, seed, report)

        return run(work)


def services_table(config: LineConfig, names: list[str]) -> Table:
    topology = current_line().topology
    table = Table(title=f"serviceline: {topology.called}")
    for column in ("service", "kind", "URL", "API docs"):
        table.add_column(column)
    for service in (s for s in topology.services if s.name in names):
        url = config.url(service)
        table.add_row(f"{service.name} — {service.title}", service.kind.value, url, f"{url}/docs")
    return table


@app.command()
def up(
    ctx: typer.Context,
    state_dir: StateDir = Path(".state"),
    host: Host = "127.0.0.1",
    admin_token: AdminToken = "admin-secret",
    api_token: ApiToken = "api-secret",
    auditor_token: AuditorToken = "auditor-secret",
    size: SizeOption = Size.SMALL,
    seed: SeedOption = 1,
    fresh: Annotated[bool, typer.Option(help="delete the databases and seed again")] = False,
    clock: Annotated[ClockMode, typer.Option(help="manual or realtime")] = ClockMode.MANUAL,
    speed: Annotated[float, typer.Option(help="realtime: simulated seconds per second")] = 3600.0,
    record_systems: Annotated[
        bool,
        typer.Option(
            "--record-systems/--no-record-systems",
            help="also start the universities' student record systems (SITS, Banner, ...)",
        ),
    ] = False,
    otlp_endpoint: Annotated[
        str,
        typer.Option(
            help="trace every service, exporting spans by OTLP/HTTP to this base URL, e.g. "
            "http://localhost:4318 (Jaeger's)",
        ),
    ] = "",
    lineage_url: Annotated[
        str | None,
        typer.Option(
            help="send every copy run's OpenLineage events to this endpoint: Marquez's base URL "
            "(e.g. http://localhost:5000) or a full endpoint URL"
        ),
    ] = None,
    lineage_file: Annotated[
        Path | None,
        typer.Option(help="append every copy run's OpenLineage events to this file, one a line"),
    ] = None,
) -> None:
    """Start every service as its own process, seed it if new, and wait for Ctrl-C."""
    if lineage_url is not None:
        lineage_url = _http_url(lineage_url, "--lineage-url")
    if fresh:
        for database in state_dir.glob("*.db*"):
            database.unlink()
    is_new = not any(state_dir.glob("*.db"))
    config = LineConfig(
        state_dir,
        host,
        admin_token,
        api_token,
        clock.value,
        speed,
        port_offset=ctx.obj,
        auditor_token=auditor_token,
        otlp_endpoint=otlp_endpoint,
        lineage_url=lineage_url,
        lineage_file=lineage_file,
    )
    names = [
        s.name
        for s in current_line().topology.services
        if record_systems or s.kind is not Kind.RECORD_SYSTEM
    ]
    try:
        line = start_line(config, names, topology=current_line().topology, restart=True)
    except LaunchError as error:
        fail(str(error))
    signal.signal(signal.SIGTERM, _interrupt)
    dashboard: RunningDashboard | None = None
    try:
        if is_new:
            console.print(f"Seeding a {size.value} line (seed {seed})…")
            counts = seed_with_progress(host, admin_token, api_token, size, seed, ctx.obj)
            console.print(", ".join(f"{n:,} {what}" for what, n in counts.items()))
        dashboard = start_dashboard(config)
        console.print(services_table(config, names))
        console.print(f"Dashboard: [bold]{dashboard.url}[/]")
        console.print(
            f"State in {state_dir}/ (logs in {state_dir}/logs). Clock: {clock.value}. "
            "Ctrl-C or `make down` stops the line."
        )
        watch(line)
        fail(f"the line's supervisor stopped; see {state_dir}/logs/supervisord.log")
    except KeyboardInterrupt:
        console.print("Stopping…")
    except LaunchError as error:
        fail(str(error))
    finally:
        if dashboard is not None:
            dashboard.stop()
        line.stop()


def _http_url(value: str, option: str) -> str:
    try:
        return str(TypeAdapter(AnyHttpUrl).validate_python(value))
    except ValidationError as error:
        raise typer.BadParameter(error.errors()[0]["msg"], param_hint=option) from error


def watch(line: RunningLine, every: float = 1.0) -> None:
    """Say when a service was restarted or given up, while the line's supervisor runs."""
    seen = line.states()
    while line.supervising():
        time.sleep(every)
        with contextlib.suppress(SupervisionError):
            states = line.states()
            for name, state in states.items():
                for news in changes(seen.get(name), state):
                    console.print(news)
            seen = states


def changes(before: ServiceState | None, now: ServiceState) -> list[str]:
    """What a person watching the line is told about one service since its last look."""
    news = []
    if before is not None and now.restarts > before.restarts:
        times = f"{now.restarts} time{'s' if now.restarts != 1 else ''}"
        news.append(f"[yellow]{now.name} died and was restarted[/] ({times} so far)")
    if now.given_up and (before is None or not before.given_up):
        news.append(
            f"[bold red]gave up on {now.name}[/]: it kept dying as it started; the rest of the "
            f"line runs on. See its log, then `serviceline start {now.name}`"
        )
    return news


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@app.command()
def down(state_dir: StateDir = Path(".state")) -> None:
    """Stop a line started by `serviceline up`."""
    try:
        stopped = stop_recorded(state_dir)
    except LaunchError as error:
        fail(str(error))
    console.print(f"stopped {', '.join(stopped)}" if stopped else "no line was running")


ServiceName = Annotated[str, typer.Argument(help="a service of the running line, e.g. find")]


def _drive(state_dir: Path, name: str, action: Callable[[RunningLine, str], None]) -> None:
    try:
        action(attach(state_dir, current_line().topology), name)
    except LaunchError as error:
        fail(str(error))


@app.command()
def stop(name: ServiceName, state_dir: StateDir = Path(".state")) -> None:
    """Stop one service of a running line; its supervisor leaves it stopped until started."""
    _drive(state_dir, name, RunningLine.stop_service)
    console.print(f"stopped {name}")


@app.command()
def start(name: ServiceName, state_dir: StateDir = Path(".state")) -> None:
    """Start a stopped or given-up service of a running line, and wait till it answers."""
    _drive(state_dir, name, RunningLine.start_service)
    console.print(f"started {name}")


@app.command()
def restart(name: ServiceName, state_dir: StateDir = Path(".state")) -> None:
    """Stop one service of a running line and start it again."""
    _drive(state_dir, name, RunningLine.restart_service)
    console.print(f"restarted {name}")


@app.command()
def seed(
    ctx: typer.Context,
    host: Host = "127.0.0.1",
    admin_token: AdminToken = "admin-secret",
    api_token: ApiToken = "api-secret",
    size: SizeOption = Size.SMALL,
    seed: SeedOption = 1,
    service_hosts: Annotated[
        bool, typer.Option(help="reach each service at the host named after it, as in compose")
    ] = False,
    if_new: Annotated[
        bool, typer.Option(help="do nothing if the line already holds a seed (a restarted stack)")
    ] = False,
) -> None:
    """Seed a running line through its owners' APIs, then copy everything once."""
    counts = seed_with_progress(
        host,
        admin_token,
        api_token,
        size,
        seed,
        ctx.obj,
        service_hosts=service_hosts,
        if_new=if_new,
    )
    if counts:
        console.print(", ".join(f"{n:,} {what}" for what, n in counts.items()))
    else:
        console.print("the line already holds a seed: nothing seeded")


def named_edges(names: list[str] | None) -> list[Edge]:
    """The edges named, in either spelling (`publish.course.apply` or `publish.course->apply`)."""
    known = {edge.name: edge for edge in current_line().topology.edges}
    unknown = [name for name in names or [] if edge_name(name) not in known]
    if unknown:
        fail(f"unknown edge {', '.join(unknown)}; edges: {', '.join(known)}")
    return [known[edge_name(name)] for name in names or []]


@app.command()
def sync(
    ctx: typer.Context,
    edges: Annotated[
        list[str] | None, typer.Argument(help="edge names, e.g. publish.course.apply; all if none")
    ] = None,
    full: Annotated[bool, typer.Option(help="list everything instead of reading changes")] = False,
    host: Host = "127.0.0.1",
    admin_token: AdminToken = "admin-secret",
) -> None:
    """Run copy edges now, off schedule."""
    chosen = named_edges(edges) or list(current_line().topology.copy_order())
    chosen = [edge for edge in chosen if edge.mechanism is not Mechanism.EVENT]

    async def work() -> list[dict[str, Any]]:
        async with connect(host, admin_token, ctx.obj) as (clients, control):
            # the record systems run only when asked: every edge means every running consumer's
            stopped = [edge.name for edge in chosen if edge.consumer not in clients]
            if edges and stopped:
                fail(f"{', '.join(stopped)}: the consumer is not running")
            running = [edge for edge in chosen if edge.consumer in clients]
            return [await control.run_edge(edge, full=full) for edge in running]

    table = Table(title="copies run")
    for column in ("edge", "mechanism", "fetched", "upserted", "deleted", "flagged", "unchanged"):
        table.add_column(column, justify="left" if column in ("edge", "mechanism") else "right")
    for outcome in run(work):
        stats = outcome["result"]
        table.add_row(
            stats["edge"],
            stats["mechanism"] + (" (relisted)" if stats["relisted"] else ""),
            *(str(stats[k]) for k in ("fetched", "upserted", "deleted", "flagged", "unchanged")),
        )
    console.print(table)


@clock_app.command("show")
def clock_show(
    ctx: typer.Context, host: Host = "127.0.0.1", admin_token: AdminToken = "admin-secret"
) -> None:
    """Each service's clock and its next job."""

    async def work() -> dict[str, dict[str, Any]]:
        async with connect(host, admin_token, ctx.obj) as (_, control):
            return await control.clocks()

    table = Table(title="simulated clock")
    for column in ("service", "now", "mode", "next job", "due"):
        table.add_column(column)
    for name, view in run(work).items():
        table.add_row(
            name, view["now"], view["mode"], view["next_job"] or "-", view["next_due"] or "-"
        )
    console.print(table)


@clock_app.command("advance")
def clock_advance(
    ctx: typer.Context,
    by: Annotated[str | None, typer.Argument(help="how far, e.g. 10m, 6h, 1d, 1w")] = None,
    to: Annotated[datetime | None, typer.Option(help="or an exact time (UTC)")] = None,
    host: Host = "127.0.0.1",
    admin_token: AdminToken = "admin-secret",
) -> None:
    """Move every clock forward, running exactly the jobs that fall due, in time order."""
    if (by is None) == (to is None):
        fail("give how far to move (e.g. `serviceline clock advance 1d`) or --to TIME")
    if by is not None:
        try:
            parse_duration(by)
        except ClockError as error:
            fail(str(error))

    async def work() -> tuple[list[dict[str, Any]], datetime]:
        async with connect(host, admin_token, ctx.obj) as (_, control):
            ran = await control.advance(by=by, to=to)
            return ran, await control.now()

    ran, now = run(work)
    runs = Counter((job["service"], job["job"]) for job in ran)
    failures = Counter((job["service"], job["job"]) for job in ran if not job["ok"])
    table = Table(title=f"clock now {now.isoformat()}")
    for column in ("service", "job", "runs", "failed"):
        table.add_column(column)
    for (service, job), count in sorted(runs.items()):
        table.add_row(service, job, str(count), str(failures[(service, job)] or ""))
    console.print(table)


@app.command("compose")
def compose_stack(
    out: Annotated[
        Path | None,
        typer.Option(
            help="the folder to write the stack to: by default the repository's root, or for a "
            "line file the file's own folder",
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        Path, typer.Option(help="the folder holding the Dockerfile the image is built from")
    ] = Path("."),
) -> None:
    """Write the line's docker compose stack: docker-compose.yml and the files in deploy/."""
    if not (context / "Dockerfile").is_file():
        fail(f"--context: no Dockerfile in {context.resolve()}")
    line = line_name()
    folder = out or (Path(line).parent if is_line_file(line) else Path("."))
    for path in write_stack(folder, current_line(), StackSource.of(line, folder, context)):
        console.print(f"wrote {path}")
    console.print(f"run it: docker compose --file {folder / COMPOSE_FILE} up --build")


@app.command("line-schema")
def line_schema() -> None:
    """The JSON schema of a line file, for editors that check YAML as it is written."""
    print(json.dumps(schema(), indent=2))


@app.command()
def topology() -> None:
    """The line as declared: who owns what, and every copy edge with its schedule."""
    owners = Table(title="entities and their owners")
    owners.add_column("entity")
    owners.add_column("owner")
    owners.add_column("key")
    for entity in current_line().topology.entities:
        owners.add_row(entity.name, " and ".join(entity.owners), entity.key)
    console.print(owners)
    edges = Table(title="copy edges (owner → consumer, never back)")
    for column in ("edge", "mechanism", "schedule (UTC, simulated)", "reads", "policy", "scope"):
        edges.add_column(column)
    for edge in current_line().topology.edges:
        schedule = edge.cadence
        if edge.full_sync_schedule:
            schedule += f"; full {edge.full_sync_schedule}"
        edges.add_row(
            edge.name,
            edge.mechanism.value,
            schedule,
            edge.reader.name,
            edge.policy.value,
            edge.scope.description,
        )
    console.print(edges)
    commands = Table(title="command paths (writes to an owner's API)")
    for column in ("caller", "target", "API"):
        commands.add_column(column)
    for command in current_line().topology.commands:
        commands.add_row(command.caller, command.target, command.api)
    console.print(commands)


def _limits(values: list[str]) -> dict[str, int]:
    limits: dict[str, int] = {}
    for value in values:
        name, _, number = value.partition("=")
        if name not in CLASSES or not number.isdigit():
            fail(f"--fail-on: {value!r} is not CLASS=N with CLASS one of {', '.join(CLASSES)}")
        limits[name] = int(number)
    return limits


def drift_table(report: DriftReport) -> Table:
    table = Table(title=f"drift at {report.at.isoformat()} (simulated)")
    table.add_column("edge or comparison")
    for name in CLASSES:
        table.add_column(name, justify="right")
    table.add_column("lag (changes, oldest)")
    table.add_column("last run")
    table.add_column("last change applied")
    table.add_column("retrying")
    for edge in report.edges:
        lag = "n/a (event)"
        if edge.lag is not None:
            age = edge.lag.oldest_age_seconds
            lag = f"{edge.lag.changes}" + (f", {age / 3600:.1f} h" if age is not None else "")
        retrying = edge.retry.describe() if edge.retry else "-"
        table.add_row(
            edge.edge,
            *(str(edge.counts[c]) for c in CLASSES),
            lag,
            _moment(edge.last_run_at),
            _moment(edge.last_change_at),
            retrying,
        )
    for comparison in report.comparisons:
        name = f"{comparison.name} ({' / '.join(comparison.services)})"
        table.add_row(name, *(str(comparison.counts[c]) for c in CLASSES), "-", "-", "-", "-")
    return table


def _moment(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "never"


def drift_notes(report: DriftReport) -> list[str]:
    """What the table cannot say: edges not audited, listed in full, or behind harmlessly."""
    notes = [f"skipped {skipped['edge']}: {skipped['reason']}" for skipped in report.skipped]
    for edge in report.edges:
        if edge.fallback is not None:
            notes.append(f"listed {edge.edge} in full: {edge.fallback}")
        if edge.lag is not None and edge.lag.unchanged_versions:
            notes.append(
                f"{edge.edge}: {edge.lag.unchanged_versions} in sync behind their owner's "
                "version: it moved, but no field this edge copies changed (no drift)"
            )
    return notes


def sample_line(report: DriftReport) -> str:
    """One sample of drift over time: the moment, the keys out of sync edge by edge."""
    drifted = [
        f"{item.edge if isinstance(item, EdgeDrift) else item.name} "
        + ", ".join(f"{c} {n}" for c, n in item.counts.items() if n and c != "in_sync")
        for item in report.items()
        if any(n for c, n in item.counts.items() if c != "in_sync")
    ]
    in_sync = report.totals()["in_sync"]
    return f"{report.at:%a %d %b %H:%M}  {in_sync} in sync; " + ("; ".join(drifted) or "no drift")


def history_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="drift history (simulated time)")
    for column in ("at", "edge or comparison", *CLASSES, "lag (changes, oldest)", "lost edits"):
        table.add_column(column)
    for row in rows:
        age = row.get("lag_oldest_age_seconds")
        lag = "-" if row.get("lag_changes") is None else str(row["lag_changes"])
        lag += f", {age / 3600:.1f} h" if age is not None else ""
        lost = row.get("lost_local_edits")
        table.add_row(
            f"{datetime.fromisoformat(row['at']):%Y-%m-%d %H:%M}",
            row["edge"],
            *(str(row["counts"][c]) for c in CLASSES),
            lag,
            "-" if lost is None else str(lost),
        )
    return table


@app.command()
def drift(
    ctx: typer.Context,
    edges: Annotated[
        list[str] | None, typer.Argument(help="edge names, e.g. publish.course.apply; all if none")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the report as JSON (docs/drift.schema.json)")
    ] = False,
    fail_on: Annotated[
        list[str] | None,
        typer.Option("--fail-on", help="CLASS=N: exit 1 when more than N keys are in CLASS"),
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="also write a self-contained HTML report")
    ] = None,
    history: Annotated[
        bool, typer.Option("--history", help="print the figures of earlier runs and stop")
    ] = False,
    bisect: Annotated[
        bool,
        typer.Option(
            "--bisect",
            help="compare range checksums first and fetch only the keys that differ; "
            "edges whose owner serves no checksums are listed in full",
        ),
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(help="sample over time: audit, move the clock this far (e.g. 1h), again"),
    ] = None,
    span: Annotated[
        str, typer.Option("--for", help="with --every: how long to sample (e.g. 1d)")
    ] = "1d",
    state_dir: StateDir = Path(".state"),
    host: Host = "127.0.0.1",
    admin_token: AdminToken = "admin-secret",
    auditor_token: AuditorToken = "auditor-secret",
) -> None:
    """Compare each copy with its owner's records, key by key, and classify the drift."""
    chosen = named_edges(edges) or None
    if history:
        rows = history_rows(read_history(state_dir), [edge.name for edge in chosen or []])
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
        else:
            console.print(history_table(rows))
        return
    limits = _limits(fail_on or [])
    try:
        step = parse_duration(every) if every is not None else None
        length = parse_duration(span)
    except ClockError as error:
        fail(str(error))

    # samples are printed as they are taken; to stderr when stdout carries the JSON
    samples = terminal(stderr=True) if as_json else console

    async def work() -> DriftReport:
        async with connect(host, admin_token, ctx.obj) as (clients, control):
            auditor = Auditor(
                clients=clients,
                token=auditor_token,
                topology=current_line().topology,
                bisect=bisect,
            )
            report = await auditor.audit(chosen)
            record_history(report, state_dir)
            if step is not None:
                samples.print(sample_line(report))
                end = await control.now() + length
                while await control.now() + step <= end:
                    await control.advance(by=every)
                    report = await auditor.audit(chosen)
                    record_history(report, state_dir)
                    samples.print(sample_line(report))
            return report

    report = run(work)
    if html_file is not None:
        html_file.write_text(render_html(report), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        console.print(drift_table(report))
        for note in drift_notes(report):
            console.print(note, markup=False)
    over = exceeded(report, limits)
    if over:
        terminal(stderr=True).print(f"[bold red]drift over the limit:[/] {'; '.join(over)}")
        raise typer.Exit(1)


def hop_table(hop: Hop) -> Table:
    """One copy of the record: each owner version, when it arrived, and why then."""
    edge = hop.edge
    how = f"{edge.mechanism.value}, cron {edge.schedule}" if edge.schedule else edge.mechanism.value
    if edge.follow:
        how = f"{edge.mechanism.value}, following"
    table = Table(title=f"{edge.name} ({how})", title_justify="left")
    for column in ("version", "written", "arrived", "lag", "what happened"):
        table.add_column(column)
    for came in hop.arrivals:
        lag = came.lag_seconds
        table.add_row(
            str(came.change.version) + (" (delete)" if came.change.op == "delete" else ""),
            when(came.change.changed_at),
            when(came.arrived_at) if came.arrived_at else came.outcome.value.replace("_", " "),
            format_duration(lag) if lag is not None else "-",
            came.words(),
        )
    return table


def hop_notes(hop: Hop) -> list[str]:
    if not hop.running:
        return ["not running: its copy is not traced"]
    held = hop.held[-1] if hop.held else None
    notes = [
        f"holds version {held.version} since {when(held.since)}"
        if held and held.op == "upsert"
        else f"holds no copy ({held.op} at {when(held.since)})"
        if held
        else "has never held it"
    ]
    if hop.never_saw:
        notes.append(f"never saw version {', '.join(map(str, hop.never_saw))}")
    if hop.state.failures:
        due = f", next try {when(hop.state.retry_due_at)}" if hop.state.retry_due_at else ""
        notes.append(f"failing: {hop.state.failures} run(s) in a row{due}: {hop.state.last_error}")
    notes += [f"fault set: {fault}" for fault in hop.state.faults]
    notes += [f"fault logged: {window.words()}" for window in hop.state.windows]
    return notes + hop.edit_words()


@app.command("trace")
def trace_record(
    ctx: typer.Context,
    entity: Annotated[str, typer.Argument(help="the record's entity, e.g. course")],
    key: Annotated[str, typer.Argument(help="its key at the owner, e.g. a course's uuid")],
    as_json: Annotated[bool, typer.Option("--json", help="print the trace as JSON")] = False,
    host: Host = "127.0.0.1",
    admin_token: AdminToken = "admin-secret",
    auditor_token: AuditorToken = "auditor-secret",
) -> None:
    """Follow one record: its versions at the owner, which each copy held when, and why then."""
    entities = [e.name for e in current_line().topology.entities]
    if entity not in entities:
        fail(f"entity: no entity {entity!r}; entities: {', '.join(entities)}")
    reading = bearer(auditor_token)

    async def work() -> Trace:
        async with connect(host, admin_token, ctx.obj) as (_, control):
            return await collect_trace(LagCollector(control), entity, key, reading)

    found = run(work)
    if not found.versions:
        owners = " or ".join(current_line().topology.entity(entity).owners)
        fail(f"key: {owners} logged no change of {entity} {key!r}")
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2))
        return
    owner = " and ".join(current_line().topology.entity(entity).owners)
    console.print(f"{entity} {key}, traced at {when(found.at)} (simulated)", markup=False)
    for change in found.versions:
        console.print(
            f"  {owner} wrote version {change.version} ({change.op}) at {when(change.changed_at)}",
            markup=False,
        )
    for hop in found.hops:
        if hop.running:
            console.print(hop_table(hop))
        for note in hop_notes(hop):
            console.print(f"  {hop.edge.consumer}: {note}", markup=False)
