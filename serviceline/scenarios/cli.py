"""`serviceline scenario`: list, run and compare scenarios, with a timeline as they go."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serviceline.dashboard.process import DASHBOARD
from serviceline.model.lines import current_line
from serviceline.model.topology import edge_name
from serviceline.output import console as terminal
from serviceline.scenarios.errors import RunError
from serviceline.scenarios.recording import Entry, Result, write_comparison
from serviceline.scenarios.runner import LineOptions, Options, run_scenario
from serviceline.scenarios.spec import (
    Scenario,
    ScenarioError,
    builtins,
    format_duration,
    load,
)
from serviceline.stack.control import ControlError
from serviceline.stack.launcher import LaunchError, free_port_offset

# the options of a run with a line of its own: a scenario's or a study's
Chosen = TypeVar("Chosen", bound=LineOptions)

scenario_app = typer.Typer(
    help="Stories told on the simulated clock, checked as they go: what the copies cost.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="a built-in scenario's name, or a scenario file")]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--override",
        help="EDGE=MECHANISM[@SCHEDULE]: read an edge another way, e.g. "
        "publish.course.apply=feed@1m (repeat for more edges)",
    ),
]
AllEdges = Annotated[
    str | None,
    typer.Option(
        "--all", help="MECHANISM[@SCHEDULE]: read every edge that can be read so, e.g. feed@1m"
    ),
]
ServiceSettings = Annotated[
    list[str] | None,
    typer.Option(
        "--setting",
        help="SERVICE.FIELD=VALUE: run a service with one of its settings changed, e.g. "
        "find.read_through=true, Find asking Publish on every search (repeat for more)",
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="print the timeline and verdict as JSON for CI")
]
StateDir = Annotated[
    Path,
    typer.Option(
        envvar="SERVICELINE_STATE_DIR",
        help="where each run's own line lives, and scenarios/last.json",
    ),
]
AdminToken = Annotated[str, typer.Option(envvar="SERVICELINE_ADMIN_TOKEN", help="admin token")]
ApiToken = Annotated[str, typer.Option(envvar="SERVICELINE_API_TOKEN", help="write API token")]
AuditorToken = Annotated[
    str, typer.Option(envvar="SERVICELINE_AUDITOR_TOKEN", help="the auditor's read token")
]


@scenario_app.command("list")
def list_scenarios() -> None:
    """The built-in scenarios."""
    table = Table(title="built-in scenarios (serviceline scenario run NAME)")
    table.add_column("name", no_wrap=True)
    table.add_column("what it shows")
    table.add_column("services")
    for scenario in builtins():
        table.add_row(scenario.name, scenario.title, ", ".join(scenario.needed()))
    terminal().print(table)


@scenario_app.command("run")
def run_command(
    ctx: typer.Context,
    name: Name,
    as_json: AsJson = False,
    url: Annotated[
        str | None,
        typer.Option(
            help="run on a line already running, at the address `serviceline up` prints "
            "(its dashboard, port 8100 + offset), instead of starting one"
        ),
    ] = None,
    override: Overrides = None,
    all_edges: AllEdges = None,
    setting: ServiceSettings = None,
    seed: Annotated[
        int | None, typer.Option(help="a seeded scenario's random seed, instead of its own")
    ] = None,
    state_dir: StateDir = Path(".state"),
    admin_token: AdminToken = "admin-secret",
    api_token: ApiToken = "api-secret",
    auditor_token: AuditorToken = "auditor-secret",
) -> None:
    """Run a scenario on its own line (or a running one), print its timeline and verdict."""
    scenario = _load(name)
    options = Options(
        state_dir=state_dir,
        port_offset=ctx.obj or 0,
        admin_token=admin_token,
        api_token=api_token,
        auditor_token=auditor_token,
        overrides=_overrides(override, all_edges),
        settings=_settings(scenario, setting),
        seed=_seed(scenario, seed),
    )
    if url is not None:
        host, offset = _address(url, options.port_offset)
        options = dataclasses.replace(options, host=host, port_offset=offset, attach=True)
    console = terminal(stderr=as_json)
    result = _run(scenario, options, console)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    raise typer.Exit(0 if result.passed else 1)


@scenario_app.command("compare")
def compare_command(
    ctx: typer.Context,
    name: Name,
    override: Overrides = None,
    all_edges: AllEdges = None,
    setting: ServiceSettings = None,
    as_json: AsJson = False,
    state_dir: StateDir = Path(".state"),
    admin_token: AdminToken = "admin-secret",
    api_token: ApiToken = "api-secret",
    auditor_token: AuditorToken = "auditor-secret",
) -> None:
    """Run a scenario as the line is, then as the overrides say; drift and lag side by side.

    Exits 1 only if the scenario fails as the line is: the what-if is expected to differ.
    """
    scenario = _load(name)
    overrides = _overrides(override, all_edges)
    settings = _settings(scenario, setting)
    if not overrides and not settings:
        refuse("give --override, --all or --setting: what to compare")
    base = Options(
        state_dir=state_dir,
        port_offset=ctx.obj or 0,
        admin_token=admin_token,
        api_token=api_token,
        auditor_token=auditor_token,
    )
    console = terminal(stderr=as_json)
    console.rule(f"{scenario.name}: as the line is")
    baseline = _run(scenario, base, console)
    what_if = dataclasses.replace(base, overrides=overrides, settings=settings)
    console.rule(f"{scenario.name}: {_what_if(overrides, settings)}")
    if "*" in overrides:
        running = set(scenario.needed())
        for edge, reason in current_line().topology.kept_by(overrides["*"]).items():
            if {
                current_line().topology.edge(edge).owner,
                current_line().topology.edge(edge).consumer,
            } <= running:
                console.print(f"kept as it is: {escape(reason)}")
    changed = _run(scenario, what_if, console)
    write_comparison(baseline, changed, _what_if(overrides, settings), state_dir)
    if as_json:
        typer.echo(json.dumps({"baseline": baseline.to_json(), "what_if": changed.to_json()}))
    else:
        _print_comparison(console, baseline, changed, _what_if(overrides, settings))
    raise typer.Exit(0 if baseline.passed else 1)


def refuse(message: str) -> NoReturn:
    terminal(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _load(name: str) -> Scenario:
    try:
        return load(name)
    except ScenarioError as error:
        refuse(f"{error.source}:\n  " + "\n  ".join(error.problems))


def _overrides(override: Sequence[str] | None, all_edges: str | None) -> dict[str, str]:
    chosen: dict[str, str] = {}
    for value in override or []:
        edge, sep, how = value.partition("=")
        if not sep or not how:
            refuse(f"--override {value!r}: give EDGE=MECHANISM[@SCHEDULE]")
        chosen[edge_name(edge)] = how.strip()
    if all_edges is not None:
        chosen["*"] = all_edges
    try:
        current_line().topology.with_overrides(chosen)
    except ValueError as error:
        refuse(f"--override/--all: {error}")
    return chosen


def _settings(scenario: Scenario, values: list[str] | None) -> dict[str, dict[str, str]]:
    """Each service's changed settings, by field; its values are checked as the line starts."""
    chosen: dict[str, dict[str, str]] = {}
    for value in values or []:
        target, sep, setting = value.partition("=")
        service, dot, field = target.strip().partition(".")
        if not sep or not dot or not field:
            refuse(f"--setting {value!r}: give SERVICE.FIELD=VALUE")
        if service not in scenario.needed():
            refuse(f"--setting {value!r}: {scenario.name} does not run {service}")
        if field not in current_line().service(service).settings.model_fields:
            refuse(f"--setting {value!r}: {service} has no setting {field!r}")
        chosen.setdefault(service, {})[field] = setting.strip()
    return chosen


def _seed(scenario: Scenario, seed: int | None) -> int | None:
    if seed is not None and scenario.seed is None:
        refuse(f"--seed: {scenario.name} builds its own data and takes no seed")
    return seed


def _address(url: str, port_offset: int) -> tuple[str, int]:
    """The host of a running line, and its port offset: from the dashboard's port, if given."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        refuse(f"--url: {url!r} names no host")
    if parts.port is None:
        return parts.hostname, port_offset
    return parts.hostname, parts.port - DASHBOARD.port


def _what_if(overrides: Mapping[str, str], settings: Mapping[str, Mapping[str, str]]) -> str:
    parts = [f"{'every edge' if edge == '*' else edge} by {how}" for edge, how in overrides.items()]
    parts += [
        f"{service}.{field}={value}"
        for service, changed in settings.items()
        for field, value in changed.items()
    ]
    return ", ".join(parts)


def _run(scenario: Scenario, options: Options, console: Console) -> Result:
    console.print(
        f"[bold]{escape(scenario.title)}[/] ({scenario.name}): {', '.join(scenario.needed())}"
    )
    if not options.attach:
        options = on_free_ports(scenario.needed(), options, console)
    printer = TimelinePrinter(console)
    try:
        result = asyncio.run(run_scenario(scenario, options, printer.entry))
    except (RunError, LaunchError) as error:
        console.print(f"[bold red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from error
    except (ControlError, httpx.TransportError) as error:
        console.print(f"[bold red]error:[/] the line stopped answering: {escape(str(error))}")
        raise typer.Exit(2) from error
    printer.verdict(result)
    return result


def on_free_ports(names: Sequence[str], options: Chosen, console: Console) -> Chosen:
    """The run's own line on its usual ports, or where they are free (a line already runs)."""
    services = [current_line().topology.service(name) for name in names]
    ports = [service.port for service in services]
    offset = free_port_offset(options.host, ports, preferred=options.port_offset)
    if offset != options.port_offset:
        moved = ", ".join(f"{s.name} {s.port + offset}" for s in services)
        console.print(
            f"ports {', '.join(str(p + options.port_offset) for p in ports)} are in use "
            f"(a line already running?): this run's own line uses port offset {offset}: {moved}"
        )
    return dataclasses.replace(options, port_offset=offset)


def drift_text(entry: Entry, *, reasons: bool = True) -> str:
    """The keys not in sync edge by edge, how far behind, and what could not be audited."""
    parts = []
    for edge, counts in entry.drift.items():
        drifted = ", ".join(f"{c} {n}" for c, n in counts.items() if n and c != "in_sync")
        if not drifted:
            continue
        lag = entry.lag.get(edge)
        if lag is not None and lag.oldest_age_seconds:
            drifted += f" (oldest change {format_duration(lag.oldest_age_seconds)} ago)"
        parts.append(f"{edge} {drifted}")
    if entry.drift and not parts:
        parts.append("none")
    unaudited: dict[str, list[str]] = {}
    for edge, reason in entry.unaudited.items():
        lag = entry.lag.get(edge)
        if reasons and lag is not None and lag.since_sync_seconds is not None:
            edge += f" (last synced {format_duration(lag.since_sync_seconds)} ago)"
        unaudited.setdefault(reason if reasons else "", []).append(edge)
    parts += [
        f"not audited{f' ({reason})' if reason else ''}: {', '.join(edges)}"
        for reason, edges in unaudited.items()
    ]
    return " · ".join(parts) or "none"


class TimelinePrinter:
    """Prints each entry as it comes: time, step, what changed, and drift when it moves."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.shown_drift: str | None = None

    def entry(self, entry: Entry) -> None:
        at = f"{entry.at:%a %d %b %H:%M}"
        number = str(entry.number) if entry.number else ""
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: " "}[entry.ok]
        self.console.print(
            f"{at}  {number:>3} {mark} [bold]{escape(entry.step)}[/]"
            + (f"  {escape(entry.changed)}" if entry.changed else "")
        )
        pad = " " * 22
        for check in entry.checks:
            colour = "green" if check.ok else "red"
            self.console.print(f"{pad}[{colour}]{'✓' if check.ok else '✗'} {escape(check.text)}[/]")
        drift = drift_text(entry)
        if drift != self.shown_drift:
            self.console.print(f"{pad}[dim]drift: {escape(drift)}[/]")
            self.shown_drift = drift

    def verdict(self, result: Result) -> None:
        span = ""
        if result.timeline:
            took = result.timeline[-1].at - result.timeline[0].at
            span = f"{format_duration(took.total_seconds())} simulated, "
        checks = sum(len(entry.checks) for entry in result.timeline)
        timing = f"({span}{result.elapsed_seconds:.1f} s)"
        if result.passed:
            self.console.print(
                f"[bold green]PASS[/] {result.scenario}: {checks} checks held {timing}"
            )
            return
        self.console.print(
            f"[bold red]FAIL[/] {result.scenario}: {len(result.failures)} of {checks} checks "
            f"failed {timing}"
        )
        for failure in result.failures:
            self.console.print(f"  [red]{escape(failure)}[/]")


def _not_in_sync(entry: Entry) -> int:
    return sum(n for counts in entry.drift.values() for c, n in counts.items() if c != "in_sync")


def _print_comparison(console: Console, baseline: Result, what_if: Result, how: str) -> None:
    steps = Table(title=f"drift after each step: as the line is | {how}")
    for column in ("at", "step", "as the line is", "what if"):
        steps.add_column(column)
    for left, right in zip(baseline.timeline, what_if.timeline, strict=False):
        steps.add_row(
            f"{left.at:%a %H:%M}",
            escape(left.step),
            escape(drift_text(left, reasons=False)),
            escape(drift_text(right, reasons=False)),
        )
    console.print(steps)
    edges = sorted({edge for r in (baseline, what_if) for e in r.timeline for edge in e.drift})
    summary = Table(title="per edge: most keys out of sync, oldest unapplied change, at the end")
    summary.add_column("edge or comparison")
    for side in ("as is", "what if"):
        for column in ("peak drift", "peak lag", "at end"):
            summary.add_column(f"{side}: {column}", justify="right")
    for edge in edges:
        row = [edge]
        for result in (baseline, what_if):
            row += _edge_figures(result, edge)
        summary.add_row(*row)
    console.print(summary)
    for label, result in (("as the line is", baseline), ("what if", what_if)):
        unsettled = _not_in_sync(result.timeline[-1]) if result.timeline else 0
        console.print(
            f"{label}: [bold]{result.verdict.upper()}[/], {unsettled} keys out of sync at the end"
        )
        for failure in result.failures:
            console.print(f"  [red]{escape(failure)}[/]")


def _edge_figures(result: Result, edge: str) -> list[str]:
    drift = [
        sum(n for c, n in e.drift[edge].items() if c != "in_sync")
        for e in result.timeline
        if edge in e.drift
    ]
    lags = [
        lag.oldest_age_seconds
        for e in result.timeline
        if (lag := e.lag.get(edge)) is not None and lag.oldest_age_seconds is not None
    ]
    if not drift:
        reason = next((e.unaudited[edge] for e in result.timeline if edge in e.unaudited), "-")
        return ["-", "-", escape(reason)]
    # a change delivered between two steps shows only in what the consumer applied
    if edge in result.peak_lag_seconds:
        lags.append(result.peak_lag_seconds[edge])
    return [
        str(max(drift)),
        format_duration(max(lags)) if lags else "0s",
        str(drift[-1]),
    ]
