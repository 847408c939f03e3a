"""What the templates draw: states in words, the graph's shapes and text, charts, a scenario run."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from serviceline.audit.drift import DriftReport, EdgeDrift
from serviceline.audit.findings import CLASSES
from serviceline.dashboard.layout import (
    LABEL_WIDTH,
    ROW_LINE,
    ROW_TOP,
    Box,
    LabelBox,
    Layout,
    NodeBox,
    Route,
    fit,
    path,
    wrap,
    wrap_parts,
)
from serviceline.model.topology import Edge, Kind, Service, Topology
from serviceline.runtime.clock import parse_duration
from serviceline.scenarios.spec import format_duration
from serviceline.stack.supervision import ServiceState
from serviceline.studies.results import LAST_STUDY, headline_items

# the worst class an edge has decides its state
SEVERITY = ("diverged", "conflicting", "orphaned", "missing", "stale")
WORDS = {
    "in_sync": "in sync",
    "stale": "stale",
    "diverged": "diverged",
    "orphaned": "orphaned",
    "missing": "missing",
    "conflicting": "conflicting",
    "unchecked": "not checked yet",
    "unreadable": "could not check",
    "down": "not running",
}
DRIFTING = tuple(c for c in CLASSES if c != "in_sync")
# the order edges are listed in by state: the worst first, those in sync last
ORDER = (*SEVERITY, "unreadable", "down", "unchecked", "in_sync")
DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def state_of(counts: Mapping[str, int]) -> str:
    return next((name for name in SEVERITY if counts.get(name)), "in_sync")


def display_name(service: Service) -> str:
    """How the source document names a service: Publish, GIAS, Tribal SITS."""
    if service.kind is Kind.RECORD_SYSTEM:
        return service.title
    if service.kind is Kind.THIRD_PARTY:
        return service.name.upper()
    return service.name.capitalize()


def edge_schedule_words(edge: Edge) -> str:
    """When an edge reads its owner, as people say it: a followed feed has no schedule."""
    return "following" if edge.follow else schedule_words(edge.schedule)


def schedule_words(cron: str | None) -> str:
    """A cron schedule as people say it; the cron itself where no short phrase fits."""
    if cron is None:
        return "on events"
    minute, hour, day, month, weekday = cron.split()
    if (day, month) != ("*", "*"):
        return cron
    if hour == "*" and weekday == "*":
        if minute == "*":
            return "every minute"
        if minute.startswith("*/"):
            return f"every {minute[2:]} min"
        if minute == "0":
            return "hourly"
    if minute.isdigit() and hour.isdigit():
        at = f"{int(hour):02d}:{int(minute):02d}"
        if weekday == "*":
            return f"daily {at}"
        if weekday.isdigit():
            return f"{DAYS[int(weekday) % 7]} {at}"
    if minute == "0" and weekday == "*" and "/" in hour:
        hours, step = hour.split("/")
        during = "" if hours == "*" else ", " + hours.replace("-", "\N{EN DASH}") + " h"
        return f"every {step} h{during}"
    return cron


def duration_words(seconds: float) -> str:
    if seconds < 60:
        return "<1 min"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def moment(at: datetime | None, *, year: bool = True) -> str:
    """A simulated time as the page shows it: `Mon 5 Oct 2026, 03:00`."""
    if at is None:
        return "\N{EN DASH}"
    day = f"{DAYS[(at.weekday() + 1) % 7]} {at.day} {at:%b}"
    return f"{day} {at:%Y, %H:%M}" if year else f"{day} {at:%H:%M}"


def supervision_words(state: ServiceState) -> str | None:
    """What a person should know of how a service has run: down, given up, restarted."""
    if state.given_up:
        return (
            f"{state.name}: given up, it kept dying as it started. See its log, then "
            f"`serviceline start {state.name}`"
        )
    said = None if state.up else f"{state.name}: down ({state.state.lower()})"
    if state.restarts and state.last_restart_at is not None:
        times = f"{state.restarts} time{'s' if state.restarts != 1 else ''}"
        restarted = f"restarted after dying {times}, last at {state.last_restart_at:%H:%M:%S}"
        said = f"{said}; {restarted}" if said else f"{state.name}: {restarted} (real time)"
    return said


@dataclass(frozen=True)
class EdgeView:
    """One copy edge as the dashboard shows it: its state and figures in words."""

    edge: Edge
    state: str
    drift: EdgeDrift | None
    why: str | None = None  # why it was not checked

    @property
    def word(self) -> str:
        return WORDS[self.state]

    @property
    def summary(self) -> str:
        """The figures, or the state's word where there are none."""
        return self.word if self.drift is None else self.figures

    @property
    def figures(self) -> str:
        """`1 stale · 2 missing · lag 2.0 h`, or `150 in sync`."""
        if self.drift is None:
            return self.why or self.word
        return " · ".join(self.parts)

    @property
    def parts(self) -> list[str]:
        """The figures one by one, or the state's word where there are none."""
        if self.drift is None:
            return [self.word]
        counts = self.drift.counts
        parts = [f"{counts[c]} {WORDS[c]}" for c in SEVERITY if counts.get(c)]
        if not parts:
            return [f"{counts['in_sync']} in sync"]
        lag = self.drift.lag
        if lag is not None and lag.changes:
            age = lag.oldest_age_seconds
            parts.append(f"lag {duration_words(age)}" if age is not None else f"lag {lag.changes}")
        return parts

    @property
    def lag(self) -> str:
        if self.drift is None:
            return "\N{EN DASH}"
        lag = self.drift.lag
        if lag is None:
            return "none: it copies on events"
        if not lag.changes:
            return "nothing waiting"
        text = f"{lag.changes} change{'s' if lag.changes != 1 else ''} waiting"
        if lag.oldest_age_seconds is not None:
            text += f", the oldest since {duration_words(lag.oldest_age_seconds)}"
        return text

    @property
    def retrying(self) -> str | None:
        """`2 failed runs; retry Mon 5 Oct 2026, 06:30 (24 left)`, or None with none pending."""
        retry = self.drift.retry if self.drift else None
        if retry is None:
            return None
        runs = f"{retry.failures} failed run{'s' if retry.failures != 1 else ''}"
        return f"{runs}; retry {moment(retry.due_at)} ({retry.retries_left} left)"

    @property
    def how(self) -> str:
        return f"{self.edge.mechanism.value} · {edge_schedule_words(self.edge)}"


def edge_views(
    topology: Topology, report: DriftReport | None, running: Sequence[str]
) -> dict[str, EdgeView]:
    audited = {drift.edge: drift for drift in report.edges} if report else {}
    skipped = {s["edge"]: s["reason"] for s in report.skipped} if report else {}
    views = {}
    for edge in topology.edges:
        down = [name for name in (edge.owner, edge.consumer) if name not in running]
        if down:
            views[edge.name] = EdgeView(edge, "down", None, f"{down[0]} is not running")
        elif edge.name in audited:
            drift = audited[edge.name]
            views[edge.name] = EdgeView(edge, state_of(drift.counts), drift)
        elif edge.name in skipped:
            views[edge.name] = EdgeView(edge, "unreadable", None, skipped[edge.name])
        else:
            views[edge.name] = EdgeView(edge, "unchecked", None)
    return views


def by_state(views: Mapping[str, EdgeView]) -> list[tuple[str, list[EdgeView]]]:
    """The edges grouped by state, the worst state first."""
    grouped = [(state, [v for v in views.values() if v.state == state]) for state in ORDER]
    return [(state, listed) for state, listed in grouped if listed]


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    kind: str = ""


@dataclass(frozen=True)
class NodeShape:
    name: str
    box: NodeBox
    label: str
    running: bool
    lines: tuple[Text, ...]
    description: str
    traced: str  # the ids of what its path lights up: its copies in and out, their other ends


@dataclass(frozen=True)
class RowShape:
    view: EdgeView
    path: str
    x: float
    y: float
    width: float
    height: float
    icon: tuple[float, float]
    entity: Text
    lines: tuple[Text, ...]
    description: str
    traced: str  # the ids of its owner and its consumer


@dataclass(frozen=True)
class CommandShape:
    path: str
    description: str


@dataclass(frozen=True)
class LabelShape:
    """The box a link's rows stand in, its header, and the ids of the edges it boxes: lit
    with any of them, dimmed with the rest when another path is lit."""

    box: LabelBox
    header: Text
    edges: str


@dataclass(frozen=True)
class GraphView:
    layout: Layout
    nodes: tuple[NodeShape, ...]
    rows: tuple[RowShape, ...]
    commands: tuple[CommandShape, ...]
    labels: tuple[LabelShape, ...]

    @property
    def headers(self) -> tuple[Text, ...]:
        return tuple(label.header for label in self.labels)


ROW_TEXT = LABEL_WIDTH - 12  # room for a row's text, inside its padding


def row_lines(view: EdgeView) -> list[Text]:
    """What a copy's row says under its entity, wrapped to its width and never cut short."""
    edge = view.edge
    how = [
        *wrap(edge.mechanism.value, ROW_TEXT, 10),
        *wrap(edge_schedule_words(edge), ROW_TEXT, 10),
    ]
    said = wrap_parts(view.parts, ROW_TEXT, 10.5, bold=True)
    return [Text(0, 0, line, "how") for line in how] + [
        Text(0, 0, line, "figures") for line in said
    ]


def row_counts(views: Mapping[str, EdgeView]) -> dict[str, int]:
    """Each copy's lines of text, for the layout to give its row the height they take."""
    return {name: len(row_lines(view)) for name, view in views.items()}


def traced(topology: Topology, name: str) -> str:
    """A service's path: its copies in and out and the services at their other ends."""
    edges = [*topology.edges_into(name), *topology.edges_from(name)]
    ends = {e.owner if e.consumer == name else e.consumer for e in edges}
    return " ".join([*(f"edge-{e.name}" for e in edges), *(f"node-{n}" for n in sorted(ends))])


def _node(topology: Topology, name: str, box: NodeBox, up: bool) -> NodeShape:
    service = topology.service(name)
    inner = box.width - 14
    titles = wrap(display_name(service), inner, 13, 2, bold=True)
    subtitle = service.title if service.kind is not Kind.RECORD_SYSTEM else "record system"
    notes = wrap(subtitle, inner, 10, (4 if up else 3) - len(titles))
    if not up:
        notes.append("not running")
    lines = [Text(box.x + 7, box.y + 18 + 14 * i, t, "name") for i, t in enumerate(titles)]
    below = box.y + 18 + 14 * len(titles) - 1
    lines += [
        Text(box.x + 7, below + 11.5 * i, note, "down-note" if note == "not running" else "title")
        for i, note in enumerate(notes)
    ]
    return NodeShape(
        name,
        box,
        display_name(service),
        up,
        tuple(lines),
        f"{service.title}, {'running' if up else 'not running'}: what it owns and copies",
        traced(topology, name),
    )


def _row(view: EdgeView, route: Route, row: Box) -> RowShape:
    edge = view.edge
    below = row.y + ROW_TOP + 8.5
    lines = tuple(
        Text(row.x + 7, below + ROW_LINE * i, line.text, line.kind)
        for i, line in enumerate(row_lines(view))
    )
    return RowShape(
        view,
        path(route.points),
        row.x,
        row.y,
        row.width,
        row.height,
        (row.x + 6, row.y + 3.5),
        Text(row.x + 22, row.y + 14, fit(edge.entity, ROW_TEXT - 16, 12, True)),
        lines,
        f"{edge.entity} from {edge.owner} to {edge.consumer}: {view.figures}; {view.how}",
        f"node-{edge.owner} node-{edge.consumer}",
    )


def graph_view(
    topology: Topology, layout: Layout, views: Mapping[str, EdgeView], running: Sequence[str]
) -> GraphView:
    nodes = [_node(topology, name, box, name in running) for name, box in layout.nodes.items()]
    boxed = {e.name: b for label in layout.labels for e, b in label.rows}
    rows = [
        _row(views[route.edge.name], route, boxed[route.edge.name])
        for route in layout.copies
        if route.edge is not None
    ]
    commands = [
        CommandShape(
            path(route.points),
            "; ".join(f"{c.caller} commands {c.target}: {c.api}" for c in route.commands),
        )
        for route in layout.commands
    ]
    labels = [
        LabelShape(
            label,
            Text(
                label.x + 7,
                label.y + 12,
                fit(
                    f"{_short(topology, label.link.source)} → "
                    f"{_short(topology, label.link.target)}",
                    label.width - 14,
                    10,
                ),
            ),
            " ".join(f"edge-{edge.name}" for edge, _ in label.rows),
        )
        for label in layout.labels
    ]
    return GraphView(layout, tuple(nodes), tuple(rows), tuple(commands), tuple(labels))


def _short(topology: Topology, name: str) -> str:
    return display_name(topology.service(name))


@dataclass(frozen=True)
class Series:
    name: str
    word: str
    path: str
    last: float


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    left: float
    top: float
    bottom: float
    right: float
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    rows: tuple[tuple[str, tuple[float, ...]], ...]  # the figures, for a table beside it


def chart(
    times: Sequence[datetime],
    series: Mapping[str, Sequence[float]],
    words: Mapping[str, str],
    width: float = 560,
    height: float = 200,
) -> Chart:
    """Step lines over simulated time: drift moves in jumps, as copies run and records change."""
    left, right, top, bottom = 40.0, width - 12, 12.0, height - 26
    start, end = (min(times), max(times)) if times else (None, None)
    span = (end - start).total_seconds() if start and end else 0.0
    peak = max((max(values, default=0) for values in series.values()), default=0)
    ceiling = _nice(peak)

    def x(at: datetime) -> float:
        if not span or start is None:
            return (left + right) / 2
        return left + (right - left) * (at - start).total_seconds() / span

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / ceiling

    drawn = []
    for name, values in series.items():
        if not values:
            continue
        points = [(x(at), y(value)) for at, value in zip(times, values, strict=True)]
        steps = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for px, py in points[1:]:
            steps.append(f"H{px:.1f}V{py:.1f}")
        if len(points) == 1:
            steps.append("h1")
        drawn.append(Series(name, words.get(name, name), "".join(steps), values[-1]))
    x_ticks: tuple[Tick, ...] = ()
    if start is not None and end is not None:
        moments = [start + (end - start) * i / 2 for i in range(3)] if span else [start]
        x_ticks = tuple(Tick(x(at), moment(at, year=False)) for at in moments)
    y_ticks = tuple(Tick(y(v), f"{v:g}") for v in (0, ceiling / 2, ceiling))
    rows = tuple(
        (moment(at), tuple(values[i] for values in series.values())) for i, at in enumerate(times)
    )
    return Chart(width, height, left, top, bottom, right, tuple(drawn), x_ticks, y_ticks, rows)


def _nice(peak: float) -> float:
    """A round top for an axis that shows `peak`."""
    if peak <= 2:
        return 2.0
    magnitude = 10 ** (len(str(int(peak))) - 1)
    for step in (1, 2, 5, 10):
        if peak <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def edge_history(
    samples: Sequence[Mapping[str, Any]], edge: str
) -> tuple[list[datetime], dict[str, list[float]]]:
    """One edge's drifting keys per class, and its waiting changes, sample by sample."""
    times: list[datetime] = []
    series: dict[str, list[float]] = {name: [] for name in (*DRIFTING, "lag")}
    for sample in samples:
        figures = sample["edges"].get(edge)
        if figures is None:
            continue
        times.append(datetime.fromisoformat(sample["at"]))
        for name in DRIFTING:
            series[name].append(figures["counts"].get(name, 0))
        series["lag"].append(figures.get("lag_changes") or 0)
    return times, {name: values for name, values in series.items() if any(values)}


# the time ranges the history can be shown over, on the simulated clock
SPANS = {"6h": "6 hours", "1d": "1 day", "1w": "1 week", "4w": "4 weeks", "all": "all samples"}


def since(samples: Sequence[Mapping[str, Any]], span: str) -> list[Mapping[str, Any]]:
    """The samples within `span` of the latest one (every one for `all`)."""
    if span == "all" or not samples:
        return list(samples)
    start = datetime.fromisoformat(samples[-1]["at"]) - parse_duration(span)
    return [s for s in samples if datetime.fromisoformat(s["at"]) >= start]


def history_charts(
    samples: Sequence[Mapping[str, Any]], edges: Sequence[str]
) -> list[tuple[str, Chart]]:
    """Per edge that drifted or waited in the samples: its keys per class and its lag, as charts."""
    words = {**WORDS, "lag": "changes waiting"}
    charts = []
    for edge in edges:
        times, series = edge_history(samples, edge)
        if times and series:
            charts.append((edge, chart(times, series, words, width=420, height=150)))
    return charts


def freshness(at: datetime | None, now: datetime | None) -> tuple[str, bool]:
    """How old the drift figures are next to the clock, and whether they are behind it."""
    if at is None:
        return "No drift figures yet: the line is being checked", True
    if now is None or at >= now:
        return f"Drift as of {moment(at, year=False)}, the clock's time", False
    behind = duration_words((now - at).total_seconds())
    return f"Drift as of {moment(at, year=False)}: {behind} older than the clock", True


def sparkline(
    samples: Sequence[Mapping[str, Any]], edge: str, width: float = 96, height: float = 20
) -> str:
    """SVG path data of an edge's drifting keys over the samples, for a table cell."""
    values = [
        sum(figures["counts"].get(c, 0) for c in DRIFTING)
        for sample in samples
        if (figures := sample["edges"].get(edge)) is not None
    ]
    if not values:
        return ""
    peak = max(values) or 1
    step = width / max(len(values) - 1, 1)
    return "M" + " L".join(
        f"{i * step:.1f},{height - 1 - (height - 2) * v / peak:.1f}" for i, v in enumerate(values)
    )


class ScenarioStep(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: datetime
    step: str
    changed: str
    drift: dict[str, dict[str, int]] = {}
    ok: bool | None = None

    @property
    def drifting(self) -> list[str]:
        """`publish.course.apply: stale 1`, for every edge that drifts at this step."""
        return [
            f"{edge}: " + ", ".join(f"{WORDS.get(c, c)} {n}" for c, n in counts.items() if n)
            for edge, counts in self.drift.items()
            if any(n for c, n in counts.items() if c != "in_sync")
        ]


class ScenarioSide(BaseModel):
    """One run of a scenario: its verdict, its timeline and what failed."""

    model_config = ConfigDict(extra="allow")

    verdict: str
    timeline: list[ScenarioStep] = []
    failures: list[str] = []

    @property
    def unsettled(self) -> int:
        """Keys out of sync after the last step."""
        last = self.timeline[-1].drift if self.timeline else {}
        return sum(n for counts in last.values() for c, n in counts.items() if c != "in_sync")


class ScenarioComparison(BaseModel):
    model_config = ConfigDict(extra="allow")

    what_if: str
    baseline: ScenarioSide


class ScenarioRun(ScenarioSide):
    scenario: str
    seed: int | None = None
    overrides: dict[str, Any] = {}
    # set when the run was the what-if of `scenario compare`, beside the line as it is
    compared: ScenarioComparison | None = None

    @property
    def side_by_side(self) -> list[tuple[ScenarioStep, ScenarioStep | None]]:
        """Each step of the line as it is, with the what-if's same step."""
        if self.compared is None:
            return []
        theirs = self.compared.baseline.timeline
        return [
            (step, self.timeline[i] if i < len(self.timeline) else None)
            for i, step in enumerate(theirs)
        ]


class ScenarioError(ValueError):
    pass


def read_scenario(state_dir: Path) -> ScenarioRun | None:
    """The last scenario run the runner recorded, or None if none has run here."""
    path = state_dir / "scenarios" / "last.json"
    if not path.exists():
        return None
    try:
        return ScenarioRun.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as error:
        raise ScenarioError(f"{path.name} cannot be read: {error}") from error


class StudyArm(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    headline: dict[str, Any]

    @property
    def figures(self) -> list[tuple[str, str]]:
        return headline_items(self.headline)


class StudyRun(BaseModel):
    """The pointer a study leaves: which it was, its headline numbers, where its report is."""

    model_config = ConfigDict(extra="allow")

    kind: str
    study: str
    title: str
    span: dict[str, Any]
    report: Path
    arms: list[StudyArm]

    @property
    def span_words(self) -> str:
        return f"{format_duration(self.span['seconds'])} from {self.span['start'][:10]}"


class StudyError(ValueError):
    pass


def read_study(state_dir: Path) -> StudyRun | None:
    """The last study run or compared here, or None if none has been."""
    path = state_dir / "studies" / LAST_STUDY
    if not path.exists():
        return None
    try:
        return StudyRun.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as error:
        raise StudyError(f"studies/{path.name} cannot be read: {error}") from error
