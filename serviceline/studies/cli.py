"""`serviceline study`: run a study through its span, or compare its variants side by side."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from serviceline.model.lines import current_line
from serviceline.output import console as terminal
from serviceline.runtime.upstream import UpstreamError
from serviceline.scenarios.cli import AdminToken, ApiToken, AuditorToken, on_free_ports
from serviceline.scenarios.runner import LineOptions
from serviceline.scenarios.spec import problem
from serviceline.stack.control import ControlError
from serviceline.stack.launcher import LaunchError
from serviceline.studies.results import (
    compare_json,
    headline_items,
    to_json,
    write_last,
    write_results,
)
from serviceline.studies.runner import Sources, StudyRunError, run_study
from serviceline.studies.sources import default_sources
from serviceline.studies.spec import (
    Arm,
    Study,
    StudyError,
    arms,
    builtin_names,
    load,
    resolve,
)

study_app = typer.Typer(
    help="A workload run through a span of the line, measured: lag, drift, lost edits, cost.",
    no_args_is_help=True,
)

Out = Annotated[
    Path | None, typer.Option("--out", help="the results folder (default .state/studies/NAME)")
]
SizeOption = Annotated[str | None, typer.Option("--size", help="seed size: small, medium, large")]
SpanOption = Annotated[
    str | None, typer.Option("--span", help="how long to run, e.g. 3d, 12w or 1y (a cycle)")
]
WorkloadOption = Annotated[
    str | None, typer.Option("--workload", help="default, a scale such as x0.1, or a file")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="the seed's and workload's seed")]
AsJson = Annotated[bool, typer.Option("--json", help="print the results as JSON for CI")]
StateDir = Annotated[
    Path, typer.Option(envvar="SERVICELINE_STATE_DIR", help="where each study's line lives")
]


@study_app.command("list")
def list_studies() -> None:
    """The built-in studies."""
    table = Table(title="built-in studies (serviceline study run NAME)")
    for column in ("name", "what it measures", "span", "variants"):
        table.add_column(column)
    for name in builtin_names():
        study = load(name)
        table.add_row(name, study.title, study.span_text(), ", ".join(study.variants) or "-")
    terminal().print(table)


@study_app.command("run")
def run_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="a built-in study's name, or a study file")],
    out: Out = None,
    size: SizeOption = None,
    span: SpanOption = None,
    workload: WorkloadOption = None,
    seed: SeedOption = None,
    as_json: AsJson = False,
    state_dir: StateDir = Path(".state"),
    admin_token: AdminToken = "admin-secret",
    api_token: ApiToken = "api-secret",
    auditor_token: AuditorToken = "auditor-secret",
) -> None:
    """Run a study on its own line and write its results folder and report."""
    study = _adjusted(_load(name), size=size, span=span, workload=workload, seed=seed)
    console = terminal(stderr=as_json)
    options = on_free_ports(
        study.needed(), _options(ctx, state_dir, admin_token, api_token, auditor_token), console
    )
    folder = out or state_dir / "studies" / study.name
    (arm,) = arms(study)
    results = _conduct(study, arm, options, folder, console)
    write_last(state_dir, "run", results, folder / "report.html")
    _print_headline(console, [results])
    console.print(f"report: {folder / 'report.html'}")
    if as_json:
        typer.echo(json.dumps(results, indent=2))


@study_app.command("compare")
def compare_command(
    ctx: typer.Context,
    names: Annotated[
        list[str],
        typer.Argument(
            help="studies or STUDY:VARIANT, run with the first's workload, seed, size and "
            "span; one study with variants compares them all"
        ),
    ],
    out: Out = None,
    size: SizeOption = None,
    span: SpanOption = None,
    workload: WorkloadOption = None,
    seed: SeedOption = None,
    as_json: AsJson = False,
    state_dir: StateDir = Path(".state"),
    admin_token: AdminToken = "admin-secret",
    api_token: ApiToken = "api-secret",
    auditor_token: AuditorToken = "auditor-secret",
) -> None:
    """Run the same workload and seed under each variant; report them side by side."""
    first, chosen = _arms(names)
    study = _adjusted(first, size=size, span=span, workload=workload, seed=seed)
    console = terminal(stderr=as_json)
    options = on_free_ports(
        study.needed(), _options(ctx, state_dir, admin_token, api_token, auditor_token), console
    )
    folder = out or state_dir / "studies" / f"{study.name}-compared"
    done = []
    for arm in chosen:
        console.rule(arm.name if arm.title == arm.name else f"{arm.name}: {arm.title}")
        done.append(_conduct(study, arm, options, folder / arm.name, console))
    compared = compare_json(done, [folder / arm.name for arm in chosen])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compare.json").write_text(json.dumps(compared, indent=2))
    # matplotlib takes most of a second to import: only the commands that draw load it
    from serviceline.studies.report import write_compare

    page = write_compare(compared, folder)
    write_last(state_dir, "compare", compared, page)
    _print_headline(console, done)
    _print_changes(console, chosen)
    console.print(f"report: {page}")
    if as_json:
        typer.echo(json.dumps(compared, indent=2))


def refuse(message: str) -> NoReturn:
    terminal(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(2)


def _load(name: str) -> Study:
    try:
        return load(name)
    except StudyError as error:
        refuse(f"{error.source}:\n  " + "\n  ".join(error.problems))


def _arms(names: Sequence[str]) -> tuple[Study, list[Arm]]:
    """The studies and variants named, as arms run with the first study's workload."""
    chosen: list[Arm] = []
    first: Study | None = None
    for name in names:
        source, _, variant = name.rpartition(":") if ":" in name else (name, "", "")
        study = _load(source)
        first = first or study
        if variant and variant not in study.variants:
            known = ", ".join(study.variants) or "none"
            refuse(f"{name}: {study.name} has no variant {variant!r} (variants: {known})")
        if variant:
            chosen += arms(study, [variant])
        elif study.variants and len(names) == 1:
            chosen += arms(study, list(study.variants))
        else:
            chosen.append(
                resolve(
                    study.name, study.title, study.overrides, study.faults, current_line().topology
                )
            )
    assert first is not None
    if len(chosen) < 2:
        refuse("give two or more studies or variants to compare, or a study with variants")
    seen = [arm.name for arm in chosen]
    doubled = sorted({n for n in seen if seen.count(n) > 1})
    if doubled:
        refuse(f"{', '.join(doubled)}: named twice; each variant runs once")
    return first, chosen


def _adjusted(study: Study, **changes: Any) -> Study:
    """The study with the command line's choices; a bad one is refused naming its option."""
    given = {name: value for name, value in changes.items() if value is not None}
    if not given:
        return study
    body = study.model_dump(exclude_unset=True) | given
    if "span" in given:
        body.pop("end", None)
    try:
        return Study.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = str(first["loc"][0]) if first["loc"] else ""
        option = f"--{where}" if where in given else where
        refuse(problem((option,), first["msg"], None))


def _options(
    ctx: typer.Context, state_dir: Path, admin_token: str, api_token: str, auditor_token: str
) -> LineOptions:
    return LineOptions(
        state_dir=state_dir,
        port_offset=ctx.obj or 0,
        admin_token=admin_token,
        api_token=api_token,
        auditor_token=auditor_token,
    )


def _conduct(
    study: Study,
    arm: Arm,
    options: LineOptions,
    folder: Path,
    console: Console,
    sources: Sources | None = None,
) -> dict[str, Any]:
    """Run one arm with a progress bar in simulated time; write its results folder."""
    console.print(
        f"[bold]{escape(study.title)}[/] ({arm.name}): {study.span_text()} simulated, "
        f"{study.size.value} seed {study.seed}, workload {study.workload}"
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("starting and seeding the line", total=None)

            def moved(moment: datetime, start: datetime, end: datetime) -> None:
                progress.update(
                    task,
                    description=f"{moment:%a %d %b %Y %H:%M}",
                    completed=(moment - start).total_seconds(),
                    total=max((end - start).total_seconds(), 1.0),
                )

            run = asyncio.run(run_study(study, arm, options, sources or default_sources(), moved))
    except StudyRunError as error:
        refuse(str(error))
    except LaunchError as error:
        hint = "; try another --port-offset" if "in use" in str(error) else ""
        refuse(f"{error}{hint}")
    except (ControlError, UpstreamError, httpx.TransportError) as error:
        refuse(f"the line stopped answering: {error}")
    results = to_json(run)
    write_results(results, folder)
    from serviceline.studies.report import write_report  # as above: matplotlib when drawing

    write_report(results, folder)
    return results


def _print_headline(console: Console, done: Sequence[dict[str, Any]]) -> None:
    table = Table(title="headline numbers")
    table.add_column("")
    for results in done:
        table.add_column(results["arm"]["name"], justify="right")
    items = [headline_items(results["headline"]) for results in done]
    for index, (label, _value) in enumerate(items[0]):
        table.add_row(label, *(escape(figures[index][1]) for figures in items))
    console.print(table)


def _print_changes(console: Console, chosen: Sequence[Arm]) -> None:
    for arm in chosen:
        changed = ", ".join(arm.changed) or "none"
        console.print(f"[bold]{escape(arm.name)}[/] reads another way: {escape(changed)}")
        for edge, why in arm.refused.items():
            console.print(f"  [red]could not change {escape(edge)}[/]: {escape(why)}")
