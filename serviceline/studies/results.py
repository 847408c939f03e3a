"""A study's results folder: results.json (docs/study.schema.json) and one CSV per metric."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from serviceline.audit.findings import CLASSES
from serviceline.scenarios.spec import format_duration
from serviceline.studies.runner import StudyRun

RESULTS = "results.json"
LAST_STUDY = "last.json"
STATS = ("p50", "p95", "p99", "max", "mean")
COUNTS = ("changes", "delivered", "superseded", "never_delivered", "pending")
COSTS = ("runs", "empty_runs", "skipped_runs", "requests", "bytes")


def to_json(run: StudyRun) -> dict[str, Any]:
    study, arm = run.study, run.arm
    body: dict[str, Any] = {
        "study": study.name,
        "title": study.title,
        "arm": {
            "name": arm.name,
            "title": arm.title,
            "overrides": arm.overrides,
            "applied": arm.applied,
            "changed": arm.changed,
            "refused": arm.refused,
        },
        "workload": study.workload,
        "size": study.size.value,
        "seed": study.seed,
        "services": study.needed(),
        "span": {
            "start": run.start.isoformat(),
            "end": run.end.isoformat(),
            "seconds": (run.end - run.start).total_seconds(),
        },
        "sample_every": study.sample_every,
        "faults": [
            {
                **fault.model_dump(exclude_none=True),
                "windows": [
                    [w.begins.isoformat(), w.ends.isoformat()]
                    for w in run.windows
                    if w.fault is fault
                ],
            }
            for fault in arm.faults
        ],
        "events": run.events,
        "jobs": run.jobs,
        "lag": run.lag,
        "samples": [
            {
                "at": sample.at.isoformat(),
                "edges": sample.edges,
                "comparisons": sample.comparisons,
                "unaudited": sample.unaudited,
            }
            for sample in run.samples
        ],
        "elapsed_seconds": run.elapsed_seconds,
        "setup_seconds": run.setup_seconds,
        "sample_seconds": run.sample_seconds,
    }
    body["headline"] = headline(body)
    return body


def headline(results: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a summary quotes: changes and their fate, the worst lag, drift, cost."""
    edges: Mapping[str, Any] = results["lag"]["edges"]
    totals = {name: sum(e[name] for e in edges.values()) for name in COUNTS}
    costs = {name: sum(e["cost"][name] for e in edges.values()) for name in COSTS}
    timed = [(name, e["lag_seconds"]["p95"]) for name, e in edges.items() if e["lag_seconds"]]
    worst = max(timed, key=lambda pair: pair[1], default=None)
    drifted = [(sample["at"], _drifted(sample["edges"].values())) for sample in results["samples"]]
    peak = max(drifted, key=lambda pair: pair[1], default=None)
    last = results["samples"][-1]["edges"] if results["samples"] else {}
    return {
        **totals,
        **costs,
        "events": sum(results["events"]["counts"].values()),
        "refused_events": sum(results["events"]["failures"].values()),
        "worst_p95": {"edge": worst[0], "seconds": worst[1]} if worst else None,
        "peak_drift": {"at": peak[0], "keys": peak[1]} if peak else None,
        "lost_local_edits": sum(e["lost_local_edits"] or 0 for e in last.values()),
    }


def headline_items(headline: Mapping[str, Any]) -> list[tuple[str, str]]:
    worst = headline["worst_p95"]
    peak = headline["peak_drift"]
    return [
        ("changes measured", f"{headline['changes']:,}"),
        ("delivered", f"{headline['delivered']:,}"),
        ("never delivered", f"{headline['never_delivered']:,}"),
        ("superseded", f"{headline['superseded']:,}"),
        (
            "worst p95 lag",
            f"{format_duration(worst['seconds'])} ({worst['edge']})" if worst else "none",
        ),
        ("peak keys out of sync", f"{peak['keys']:,} ({peak['at'][:10]})" if peak else "none"),
        ("local edits lost", f"{headline['lost_local_edits']:,}"),
        ("requests", f"{headline['requests']:,}"),
        ("copy runs (found nothing)", f"{headline['runs']:,} ({headline['empty_runs']:,})"),
        ("events (refused)", f"{headline['events']:,} ({headline['refused_events']:,})"),
    ]


def _drifted(edges: Iterable[Mapping[str, Any]]) -> int:
    return sum(n for e in edges for c, n in e["counts"].items() if c != "in_sync")


def write_results(results: Mapping[str, Any], folder: Path) -> list[Path]:
    """results.json and the CSVs, in `folder`; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RESULTS
    # in the order the line lists its edges, which the charts and tables keep
    path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return [path, *write_csvs(results, folder)]


def write_csvs(results: Mapping[str, Any], folder: Path) -> list[Path]:
    edges: Mapping[str, Any] = results["lag"]["edges"]
    journeys: Mapping[str, Any] = results["lag"]["journeys"]
    tables: dict[str, tuple[Sequence[str], list[list[Any]]]] = {
        "lag.csv": (
            ["edge", *COUNTS, *(f"{s}_seconds" for s in STATS)],
            [
                [name, *(e[c] for c in COUNTS), *_stats(e["lag_seconds"])]
                for name, e in edges.items()
            ],
        ),
        "visibility.csv": (
            ["edge", "within_seconds", "share"],
            [[name, t, share] for name, e in edges.items() for t, share in e["visibility"]],
        ),
        "journeys.csv": (
            ["journey", "edges", "changes", "delivered", *(f"{s}_seconds" for s in STATS)],
            [
                [
                    name,
                    " ".join(j["edges"]),
                    j["changes"],
                    j["delivered"],
                    *_stats(j["lag_seconds"]),
                ]
                for name, j in journeys.items()
            ],
        ),
        "drift.csv": (
            ["at", "edge", *CLASSES],
            [
                [s["at"], name, *(e["counts"].get(c, 0) for c in CLASSES)]
                for s in results["samples"]
                for name, e in [*s["edges"].items(), *_as_edges(s["comparisons"])]
            ],
        ),
        "lost_local_edits.csv": (
            ["at", "edge", "lost_local_edits"],
            [
                [s["at"], name, e["lost_local_edits"]]
                for s in results["samples"]
                for name, e in s["edges"].items()
                if e["lost_local_edits"] is not None
            ],
        ),
        "cost.csv": (
            ["edge", *COSTS],
            [[name, *(e["cost"][c] for c in COSTS)] for name, e in edges.items()],
        ),
    }
    written = []
    for name, (header, rows) in tables.items():
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
        written.append(path)
    return written


def _stats(stats: Mapping[str, float] | None) -> list[float | str]:
    return [stats[s] for s in STATS] if stats else [""] * len(STATS)


def _as_edges(comparisons: Mapping[str, Mapping[str, int]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, {"counts": counts}) for name, counts in comparisons.items()]


def compare_json(arms: Sequence[Mapping[str, Any]], folders: Sequence[Path]) -> dict[str, Any]:
    """Each arm's headline and each edge's figures side by side, with what each arm changed."""
    names = [results["arm"]["name"] for results in arms]
    edges: dict[str, dict[str, Any]] = {}
    for name, results in zip(names, arms, strict=True):
        for edge, figures in results["lag"]["edges"].items():
            stats = figures["lag_seconds"] or {}
            edges.setdefault(edge, {})[name] = {
                **{c: figures[c] for c in COUNTS},
                **{f"{s}_seconds": stats.get(s) for s in ("p50", "p95", "max")},
                **figures["cost"],
            }
    return {
        "study": arms[0]["study"],
        "title": arms[0]["title"],
        "workload": arms[0]["workload"],
        "size": arms[0]["size"],
        "seed": arms[0]["seed"],
        "span": arms[0]["span"],
        "arms": [
            {
                "name": name,
                "title": results["arm"]["title"],
                "folder": str(folder),
                "overrides": results["arm"]["overrides"],
                "applied": results["arm"]["applied"],
                "changed": results["arm"]["changed"],
                "refused": results["arm"]["refused"],
                "headline": results["headline"],
            }
            for name, results, folder in zip(names, arms, folders, strict=True)
        ],
        "edges": edges,
    }


def write_last(state_dir: Path, kind: str, body: Mapping[str, Any], report: Path) -> Path:
    """The pointer the dashboard follows to the last study run or compared here."""
    path = state_dir / "studies" / LAST_STUDY
    path.parent.mkdir(parents=True, exist_ok=True)
    arms = body.get("arms") or [{"name": body["arm"]["name"], "headline": body["headline"]}]
    pointer = {
        "kind": kind,
        "study": body["study"],
        "title": body["title"],
        "span": body["span"],
        "report": str(report.resolve()),
        "arms": [{"name": arm["name"], "headline": arm["headline"]} for arm in arms],
    }
    path.write_text(json.dumps(pointer, indent=2), encoding="utf-8")
    return path
