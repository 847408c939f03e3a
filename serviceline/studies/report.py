"""A study's charts (one SVG each, drawn by matplotlib) and its self-contained report.html."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from serviceline.audit.findings import CLASSES
from serviceline.scenarios.spec import format_duration
from serviceline.studies.results import headline_items

REPORT = "report.html"
# the same figures give the same file: fixed ids, no creation date
STYLE: dict[Any, Any] = {
    "svg.hashsalt": "serviceline-study",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLOURS = {
    "in_sync": "#00703c",
    "stale": "#b58840",
    "missing": "#f47738",
    "diverged": "#d4351c",
    "orphaned": "#912b88",
    "conflicting": "#1d70b8",
}
STAT_COLOURS = {"p50": "#1d70b8", "p95": "#f47738", "p99": "#d4351c", "max": "#505a5f"}
GRID_LABELS = {
    60: "1m",
    300: "5m",
    600: "10m",
    1800: "30m",
    3600: "1h",
    7200: "2h",
    21600: "6h",
    43200: "12h",
    86400: "1d",
    172800: "2d",
    604800: "1w",
}
CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #0b0c0c;
  padding: 0 1rem; line-height: 1.4; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .9rem; }
th, td { border: 1px solid #b1b4b6; padding: .25rem .5rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0 2rem; } figcaption { font-size: .9rem; color: #505a5f; }
figure svg { max-width: 100%; height: auto; }
dl.headline { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr));
  gap: .75rem; } dl.headline div { border-left: 4px solid #1d70b8; padding-left: .5rem; }
dl.headline dt { font-size: .85rem; color: #505a5f; } dl.headline dd { margin: 0;
  font-size: 1.3rem; font-weight: bold; }
.refused { color: #d4351c; } code { font-size: .85rem; }
"""

Chart = Callable[[Mapping[str, Any]], Figure]


def _figure(rows: int = 1, height: float = 3.6) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(9, max(height, 1.2 + 0.32 * rows)), layout="constrained")
    return figure, figure.add_subplot()


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#505a5f")


def lag_chart(results: Mapping[str, Any]) -> Figure:
    edges = {n: e["lag_seconds"] for n, e in results["lag"]["edges"].items() if e["lag_seconds"]}
    figure, axes = _figure(len(edges) * 4)
    axes.set_title("Lag per edge: how long a change took to arrive")
    if not edges:
        _empty(axes, "no change was measured on any edge")
        axes.set_xlabel("seconds")
        return figure
    names = list(edges)
    height = 0.2
    for index, (stat, colour) in enumerate(STAT_COLOURS.items()):
        axes.barh(
            [i + (index - 1.5) * height for i in range(len(names))],
            [max(edges[n][stat], 1.0) for n in names],
            height=height,
            color=colour,
            label=stat,
        )
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xscale("log")
    ticks = [t for t in GRID_LABELS if t <= 2 * max(edges[n]["max"] for n in names)] or [60]
    axes.set_xticks(ticks, [GRID_LABELS[t] for t in ticks])
    axes.set_xlabel("lag (log scale)")
    axes.legend(loc="lower right")
    return figure


def visibility_chart(results: Mapping[str, Any]) -> Figure:
    edges = {n: e for n, e in results["lag"]["edges"].items() if e["changes"]}
    figure, axes = _figure()
    axes.set_title("t-visibility: the share of changes visible within t")
    for name, edge in edges.items():
        points = edge["visibility"]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, label=name)
    if not edges:
        _empty(axes, "no change was measured on any edge")
    axes.set_xscale("log")
    axes.set_xticks(list(GRID_LABELS), list(GRID_LABELS.values()))
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("share visible")
    axes.set_xlabel("within t (log scale)")
    if edges:
        axes.legend(fontsize=7, loc="lower right")
    return figure


def drift_chart(results: Mapping[str, Any]) -> Figure:
    samples = results["samples"]
    figure, axes = _figure()
    axes.set_title("Drift by class over the span: keys out of sync on every edge")
    times = _times(samples)
    drifting = [c for c in CLASSES if c != "in_sync"]
    series = [
        [
            sum(e["counts"].get(c, 0) for e in [*s["edges"].values()])
            + sum(counts.get(c, 0) for counts in s["comparisons"].values())
            for s in samples
        ]
        for c in drifting
    ]
    axes.stackplot(times, series, labels=drifting, colors=[COLOURS[c] for c in drifting])
    axes.set_ylabel("keys")
    axes.legend(fontsize=7, loc="upper left")
    _dates(figure, axes, samples)
    return figure


def lost_edits_chart(results: Mapping[str, Any]) -> Figure:
    samples = results["samples"]
    figure, axes = _figure()
    axes.set_title("Local edits lost to the owner's next copy")
    times = _times(samples)

    def lost(name: str) -> list[int]:
        return [(s["edges"].get(name) or {}).get("lost_local_edits") or 0 for s in samples]

    names = sorted({n for s in samples for n, e in s["edges"].items() if e["lost_local_edits"]})
    for name in names:
        axes.plot(times, lost(name), label=name)
    if names:
        axes.legend(fontsize=7, loc="upper left")
    else:
        axes.plot(times, [0] * len(times), color="#b1b4b6")
        _empty(axes, "no local edit was lost on any edge")
    axes.set_ylabel("edits lost so far")
    _dates(figure, axes, samples)
    return figure


def cost_chart(results: Mapping[str, Any]) -> Figure:
    edges = results["lag"]["edges"]
    names = list(edges)
    figure, axes = _figure(len(names))
    axes.set_title("Cost per edge: copy runs, and how many found nothing")
    found = [edges[n]["cost"]["runs"] - edges[n]["cost"]["empty_runs"] for n in names]
    empty = [edges[n]["cost"]["empty_runs"] for n in names]
    axes.barh(names, found, color="#1d70b8", label="found changes")
    axes.barh(names, empty, left=found, color="#b1b4b6", label="found nothing")
    for index, name in enumerate(names):
        cost = edges[name]["cost"]
        axes.annotate(
            f"{cost['requests']:,} requests, {_bytes(cost['bytes'])}",
            (found[index] + empty[index], index),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    axes.invert_yaxis()
    axes.set_xlabel("runs")
    axes.legend(fontsize=7, loc="lower right")
    return figure


def _times(samples: Sequence[Mapping[str, Any]]) -> list[float]:
    """Each sample's time as days into the span, which the axis labels with dates."""
    moments = [datetime.fromisoformat(s["at"]) for s in samples]
    return [(m - moments[0]).total_seconds() / 86400 for m in moments]


def _dates(figure: Figure, axes: Axes, samples: Sequence[Mapping[str, Any]]) -> None:
    if not samples:
        return
    first = datetime.fromisoformat(samples[0]["at"])
    days = _times(samples)
    step = max(1, len(days) // 8)
    ticks = days[::step]
    shown = "%d %b %H:%M" if days[-1] < 3 else "%d %b"
    axes.set_xticks(ticks, [f"{first + timedelta(days=d):{shown}}" for d in ticks])
    axes.set_xlim(0, max(days[-1], 1e-6))
    figure.autofmt_xdate()


def _bytes(count: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    return str(count)


CHARTS: dict[str, tuple[str, Chart]] = {
    "lag": ("Lag per edge (p50, p95, p99 and max)", lag_chart),
    "visibility": ("The share of each edge's changes visible within t", visibility_chart),
    "drift": ("Keys out of sync, by drift class, at each sample", drift_chart),
    "lost-local-edits": ("Local edits the owner's copy overwrote, per edge", lost_edits_chart),
    "cost": ("Copy runs per edge, and the requests and bytes they cost", cost_chart),
}


def svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def draw(
    results: Mapping[str, Any], folder: Path, charts: Mapping[str, tuple[str, Chart]] = CHARTS
) -> dict[str, str]:
    """Every chart as `<name>.svg` in `folder`; the SVG text by chart name."""
    drawn = {}
    for name, (_caption, chart) in charts.items():
        with mpl.rc_context(STYLE):
            text = svg(chart(results))
        (folder / f"{name}.svg").write_text(text, encoding="utf-8")
        drawn[name] = text
    return drawn


def inline(text: str) -> str:
    """An SVG file's text as an element of a page: without its XML prologue."""
    return re.sub(r"^<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", "", text)


def write_report(results: Mapping[str, Any], folder: Path) -> Path:
    drawn = draw(results, folder)
    path = folder / REPORT
    path.write_text(render(results, drawn), encoding="utf-8")
    return path


def render(results: Mapping[str, Any], drawn: Mapping[str, str]) -> str:
    e = html.escape
    arm = results["arm"]
    title = results["title"] + ("" if arm["name"] == results["study"] else f": {arm['title']}")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(_about(results))}</p>",
        _headline(results["headline"]),
        _what_if(arm),
        _faults(results["faults"]),
        "<h2>Lag per edge</h2>",
        _lag_table(results["lag"]["edges"]),
    ]
    parts += _figures(drawn, CHARTS)
    parts.append(_events(results["events"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _figures(drawn: Mapping[str, str], charts: Mapping[str, tuple[str, Chart]]) -> list[str]:
    return [
        f"<figure id='chart-{name}'>{inline(drawn[name])}<figcaption>{html.escape(caption)} "
        f"(<a href='{name}.svg'>{name}.svg</a>)</figcaption></figure>"
        for name, (caption, _chart) in charts.items()
    ]


def _about(results: Mapping[str, Any]) -> str:
    span = results["span"]
    return (
        f"Workload {results['workload']}, {results['size']} seed {results['seed']}, from "
        f"{span['start'][:16]} for {format_duration(span['seconds'])} of simulated time, drift "
        f"sampled every {results['sample_every']}; services: {', '.join(results['services'])}."
    )


def _headline(headline: Mapping[str, Any]) -> str:
    e = html.escape
    items = "".join(
        f"<div><dt>{e(k)}</dt><dd>{e(v)}</dd></div>" for k, v in headline_items(headline)
    )
    return f"<dl class='headline'>{items}</dl>"


def _what_if(arm: Mapping[str, Any], heading: str = "<h2>What if</h2>") -> str:
    e = html.escape
    if not arm["overrides"]:
        return "<p>Every edge read as the line reads it.</p>"
    changed = "".join(
        f"<li><code>{e(n)}</code> by {e(arm['applied'][n])}</li>" for n in arm["changed"]
    )
    refused = "".join(
        f"<li class='refused'><code>{e(n)}</code>: {e(why)}</li>"
        for n, why in arm["refused"].items()
    )
    return f"{heading}<p>Edges read another way:</p><ul>{changed or '<li>none</li>'}</ul>" + (
        f"<p>Edges that could not be changed:</p><ul>{refused}</ul>" if refused else ""
    )


def _faults(faults: Sequence[Mapping[str, Any]]) -> str:
    e = html.escape
    if not faults:
        return ""
    rows = "".join(
        f"<tr><td>{e(f['service'])}</td><td>{e(f['kind'])}</td><td><code>{e(f['every'])}</code>"
        f"</td><td>{e(f['lasting'])}</td><td class='n'>{len(f['windows'])}</td></tr>"
        for f in faults
    )
    return (
        "<h2>Faults on the calendar</h2><table><tr><th>service</th><th>fault</th><th>from</th>"
        f"<th>lasting</th><th>times</th></tr>{rows}</table>"
    )


def _lag_table(edges: Mapping[str, Any]) -> str:
    e = html.escape
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "edge",
            "changes",
            "delivered",
            "never",
            "superseded",
            "pending",
            "p50",
            "p95",
            "p99",
            "max",
            "runs",
            "found nothing",
            "requests",
            "bytes",
        )
    )
    rows = []
    for name, edge in edges.items():
        stats = edge["lag_seconds"] or {}
        timed = [format_duration(stats[s]) if stats else "-" for s in ("p50", "p95", "p99", "max")]
        cost = edge["cost"]
        cells = [
            edge["changes"],
            edge["delivered"],
            edge["never_delivered"],
            edge["superseded"],
            edge["pending"],
            *timed,
            cost["runs"],
            cost["empty_runs"],
            cost["requests"],
            _bytes(cost["bytes"]),
        ]
        rows.append(
            f"<tr><td><code>{e(name)}</code></td>"
            + "".join(f"<td class='n'>{e(str(c))}</td>" for c in cells)
            + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _events(events: Mapping[str, Mapping[str, int]]) -> str:
    e = html.escape
    kinds = sorted(set(events["counts"]) | set(events["failures"]))
    if not kinds:
        return "<h2>Events</h2><p>No outside writer changed the line.</p>"
    rows = "".join(
        f"<tr><td>{e(k)}</td><td class='n'>{events['counts'].get(k, 0):,}</td>"
        f"<td class='n'>{events['failures'].get(k, 0):,}</td></tr>"
        for k in kinds
    )
    return (
        f"<h2>Events</h2><table><tr><th>event</th><th>done</th><th>refused</th></tr>{rows}</table>"
    )


COMPARE = "compare.html"


def _by_arm(compared: Mapping[str, Any], figure_name: str, title: str, label: str) -> Figure:
    arms = [arm["name"] for arm in compared["arms"]]
    edges = [
        name
        for name, by_arm in compared["edges"].items()
        if any((by_arm.get(a) or {}).get(figure_name) for a in arms)
    ]
    figure, axes = _figure(len(edges) * len(arms))
    axes.set_title(title)
    height = 0.8 / max(len(arms), 1)
    for index, arm in enumerate(arms):
        axes.barh(
            [i + (index - (len(arms) - 1) / 2) * height for i in range(len(edges))],
            [(compared["edges"][e].get(arm) or {}).get(figure_name) or 0 for e in edges],
            height=height,
            label=arm,
        )
    axes.set_yticks(range(len(edges)), edges)
    axes.invert_yaxis()
    axes.set_xlabel(label)
    if edges:
        axes.legend(fontsize=7, loc="lower right")
    else:
        _empty(axes, "no edge has this figure in any variant")
    return figure


COMPARE_CHARTS: dict[str, tuple[str, Chart]] = {
    "compare-lag": (
        "p95 lag per edge, variant by variant",
        lambda c: _by_arm(c, "p95_seconds", "p95 lag per edge", "seconds"),
    ),
    "compare-never-delivered": (
        "Changes never delivered per edge, variant by variant",
        lambda c: _by_arm(c, "never_delivered", "Changes never delivered", "changes"),
    ),
    "compare-requests": (
        "Requests per edge, variant by variant",
        lambda c: _by_arm(c, "requests", "Requests per edge", "requests"),
    ),
}


def write_compare(compared: Mapping[str, Any], folder: Path) -> Path:
    drawn = draw(compared, folder, COMPARE_CHARTS)
    path = folder / COMPARE
    path.write_text(render_compare(compared, drawn), encoding="utf-8")
    return path


def render_compare(compared: Mapping[str, Any], drawn: Mapping[str, str]) -> str:
    e = html.escape
    arms = compared["arms"]
    labels = [label for label, _ in headline_items(arms[0]["headline"])]
    rows = "".join(
        f"<tr><th>{e(label)}</th>"
        + "".join(f"<td class='n'>{e(headline_items(a['headline'])[i][1])}</td>" for a in arms)
        + "</tr>"
        for i, label in enumerate(labels)
    )
    head = "".join(
        f"<th><a href='{e(Path(a['folder']).name)}/{REPORT}'>{e(a['name'])}</a></th>" for a in arms
    )
    changes = "".join(_what_if(a, f"<h3>{e(_arm_title(a))}</h3>") for a in arms)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(compared['title'])}: compared</title><style>{CSS}</style></head><body>",
        f"<h1>{e(compared['title'])}: compared</h1>",
        f"<p>The same workload ({e(compared['workload'])}), {e(compared['size'])} seed "
        f"{compared['seed']}, for {format_duration(compared['span']['seconds'])}, under each "
        "variant.</p>",
        f"<table><tr><th></th>{head}</tr>{rows}</table>",
        "<h2>What each variant changed</h2>",
        changes,
        "<h2>Per edge</h2>",
        _compare_table(compared),
        *_figures(drawn, COMPARE_CHARTS),
        "</body></html>",
    ]
    return "\n".join(parts)


def _arm_title(arm: Mapping[str, Any]) -> str:
    return arm["name"] if arm["title"] == arm["name"] else f"{arm['name']}: {arm['title']}"


COMPARED = {
    "p95_seconds": "p95",
    "never_delivered": "never delivered",
    "pending": "pending",
    "requests": "requests",
    "empty_runs": "runs finding nothing",
}


def _compare_table(compared: Mapping[str, Any]) -> str:
    e = html.escape
    arms = [arm["name"] for arm in compared["arms"]]
    head = "".join(f"<th>{e(label)}: {e(arm)}</th>" for label in COMPARED.values() for arm in arms)
    rows = []
    for edge, by_arm in compared["edges"].items():
        cells = []
        for figure in COMPARED:
            for arm in arms:
                value = (by_arm.get(arm) or {}).get(figure)
                shown = (
                    "-"
                    if value is None
                    else (format_duration(value) if figure.endswith("_seconds") else f"{value:,}")
                )
                cells.append(f"<td class='n'>{e(shown)}</td>")
        rows.append(f"<tr><td><code>{e(edge)}</code></td>{''.join(cells)}</tr>")
    return f"<table><tr><th>edge</th>{head}</tr>{''.join(rows)}</table>"
