"""The event and lag sources a study runs with unless it is given others.

Until the workload and the per-change lag records are part of the line, a study runs the line
quiet and reads lag from its drift samples: each sample's oldest change still waiting on an
edge counts as one observed change, late by at least its age.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from serviceline.studies.runner import EventSource, LagSource, Sources, StudyLine
from serviceline.topology import Edge

# the t-visibility grid, in seconds: a minute to a week
VISIBILITY_GRID = (60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800)


class QuietLine:
    """No outside writer: the line only runs its own jobs."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    async def prepare(self) -> None:
        return None

    def next_at(self) -> datetime | None:
        return None

    def targets_at(self, moment: datetime) -> set[str]:
        return set()

    async def fire(self, moment: datetime) -> int:
        return 0


def lag_stats(seconds: list[float]) -> dict[str, float] | None:
    """p50, p95, p99, max and mean of some propagation times, nearest-rank."""
    if not seconds:
        return None
    ordered = sorted(seconds)

    def rank(share: float) -> float:
        return ordered[max(0, math.ceil(len(ordered) * share) - 1)]

    return {
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def visibility(seconds: list[float], changes: int) -> list[list[float]]:
    """The share of `changes` seen within each t of the grid."""
    return [
        [t, (sum(s <= t for s in seconds) / changes) if changes else 1.0] for t in VISIBILITY_GRID
    ]


@dataclass
class DriftLagReport:
    edges: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"edges": self.edges, "journeys": {}}


@dataclass
class DriftLag:
    """Lag as the drift samples show it: the age of the oldest change waiting on each edge."""

    line: StudyLine
    ages: dict[str, list[float]] = field(default_factory=dict)
    waiting: dict[str, bool] = field(default_factory=dict)

    async def collect(self) -> None:
        sample = self.line.samples[-1]
        for name, figures in sample.edges.items():
            age = figures["oldest_age_seconds"]
            behind = bool(figures["lag_changes"])
            if behind and age is not None:
                self.ages.setdefault(name, []).append(age)
            self.waiting[name] = behind and age is not None

    def report(self, until: datetime) -> DriftLagReport:
        edges = [
            e for e in self.line.topology.edges if {e.owner, e.consumer} <= set(self.line.clients)
        ]
        return DriftLagReport({edge.name: self._edge(edge) for edge in edges})

    def _edge(self, edge: Edge) -> dict[str, Any]:
        ages = self.ages.get(edge.name, [])
        pending = int(self.waiting.get(edge.name, False))
        figures: dict[str, Any] = {
            "changes": len(ages),
            "delivered": len(ages) - pending,
            "superseded": 0,
            "never_delivered": 0,
            "pending": pending,
            "lag_seconds": lag_stats(ages),
            "visibility": visibility(ages, len(ages)),
        }
        return {**figures, "by_op": {"upsert": figures}, "cost": self._cost(edge)}

    def _cost(self, edge: Edge) -> dict[str, int]:
        runs = [
            job
            for job in self.line.control.log
            if job["service"] == edge.consumer and job["job"] in (edge.name, f"{edge.name}:full")
        ]
        empty = [job for job in runs if job["ok"] and _found_nothing(job.get("result"))]
        return {
            "runs": len(runs),
            "empty_runs": len(empty),
            "skipped_runs": 0,
            "requests": 0,
            "bytes": 0,
        }


def _found_nothing(result: Any) -> bool:
    if not isinstance(result, dict):
        return False
    return not any(result.get(what) for what in ("upserted", "deleted", "flagged"))


def quiet_events(_line: StudyLine) -> EventSource:
    return QuietLine()


def drift_lag(line: StudyLine) -> LagSource:
    return DriftLag(line)


def default_sources() -> Sources:
    return Sources(events=quiet_events, lag=drift_lag)
