"""The dashboard's /metrics: what only the whole line shows, as the board last measured it.

A service knows its own logs; drift, the changes waiting and each change's lag need the owner's
records or log beside the consumer's copy, so they come from the auditor, which is this process.
They are the figures of the board's latest check (its simulated time is served with them); a
scrape keeps the board looking at the line, as an open page does.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from serviceline.audit.findings import CLASSES
from serviceline.audit.lag import VISIBILITY_GRID, Stats
from serviceline.dashboard.board import Board
from serviceline.telemetry.metrics import PREFIX

# the lag histograms' bounds, in simulated seconds: the grid the lag report's visibility uses
LAG_BUCKETS = VISIBILITY_GRID
OUTCOMES = ("delivered", "superseded", "never_delivered", "pending")


class LineCollector(Collector):
    """Drift by class, changes waiting and the lag of delivered changes, per edge."""

    def __init__(self, board: Callable[[], Board | None]) -> None:
        # the board exists once the dashboard's lifespan has begun
        self.board = board

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        board = self.board()
        if board is None:
            return
        board.scraped()
        yield from _drift(board)
        yield from _lag(board)


def _drift(board: Board) -> Iterator[Metric]:
    report = board.report
    if report is None:
        return
    yield GaugeMetricFamily(
        f"{PREFIX}_drift_checked_timestamp_seconds",
        "The simulated time of the drift check these figures come from",
        value=report.at.timestamp(),
    )
    drift = GaugeMetricFamily(
        f"{PREFIX}_drift_records",
        "Keys of each edge by drift class (conflicting is for comparisons, 0 on an edge)",
        labels=["edge", "class"],
    )
    waiting = GaugeMetricFamily(
        f"{PREFIX}_copy_changes_waiting",
        "Owner changes the copy does not hold yet",
        labels=["edge"],
    )
    oldest = GaugeMetricFamily(
        f"{PREFIX}_copy_oldest_waiting_age_seconds",
        "Simulated seconds the oldest change waiting has waited (0: none waits)",
        labels=["edge"],
    )
    for edge in sorted(report.edges, key=lambda e: e.edge):
        for name in CLASSES:
            drift.add_metric([edge.edge, name], edge.counts.get(name, 0))
        if edge.lag is not None:  # an event-driven edge has no schedule to lag behind
            waiting.add_metric([edge.edge], edge.lag.changes)
            oldest.add_metric([edge.edge], edge.lag.oldest_age_seconds or 0.0)
    conflicts = GaugeMetricFamily(
        f"{PREFIX}_drift_comparison_records",
        "Keys two services both create, by class: in_sync or conflicting",
        labels=["comparison", "class"],
    )
    for comparison in sorted(report.comparisons, key=lambda c: c.name):
        for name, count in sorted(comparison.counts.items()):
            conflicts.add_metric([comparison.name, name], count)
    yield from (drift, waiting, oldest, conflicts)


def _lag(board: Board) -> Iterator[Metric]:
    report = board.lag
    if report is None:
        return
    lag = HistogramMetricFamily(
        f"{PREFIX}_copy_lag_seconds",
        "Simulated seconds from an owner's change to the first moment its copy held it, for "
        "every change delivered on the edge",
        labels=["edge"],
    )
    changes = GaugeMetricFamily(
        f"{PREFIX}_copy_changes",
        "Owner changes in each edge's scope by what became of them",
        labels=["edge", "outcome"],
    )
    for name, edge in sorted(report.edges.items()):
        stats = edge.stats
        lag.add_metric([name], _buckets(stats.lags), sum(stats.lags))
        for outcome in OUTCOMES:
            changes.add_metric([name, outcome], _count(stats, outcome))
    journeys = HistogramMetricFamily(
        f"{PREFIX}_journey_lag_seconds",
        "Simulated seconds from an owner's change to the moment the last copy on its journey "
        "held it",
        labels=["journey"],
    )
    for name, journey in sorted(report.journeys.items()):
        journeys.add_metric([name], _buckets(journey.lags), sum(journey.lags))
    yield from (lag, changes, journeys)


def _buckets(lags: Sequence[float]) -> list[tuple[str, float]]:
    """Cumulative counts at each bound, as Prometheus's `le` buckets read."""
    ordered = sorted(lags)
    counts = [
        (str(float(bound)), float(bisect.bisect_right(ordered, bound))) for bound in LAG_BUCKETS
    ]
    return [*counts, ("+Inf", float(len(ordered)))]


def _count(stats: Stats, outcome: str) -> int:
    counted: int = getattr(stats, outcome)
    return counted
