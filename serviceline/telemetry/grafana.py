"""The Grafana dashboard the compose stack provisions: lag, drift and cost per edge.

Written to deploy/grafana by `python -m serviceline.stack.compose` with the rest of the stack,
so its queries use the names /metrics serves (serviceline.telemetry.metrics and
serviceline.dashboard.metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DATASOURCE_UID = "serviceline-prometheus"
DASHBOARD_UID = "serviceline-line"
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
EDGE = 'edge=~"$edge"'
# panels side by side, two to a row of Grafana's 24 columns
WIDTH, HEIGHT = 12, 8


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    stacked: bool = False


PANELS = (
    Panel(
        "Lag of delivered changes, p95 (simulated)",
        "From an owner's change to the first moment its copy held it, on the simulated clock: "
        "the 95th percentile of every change delivered so far, per edge.",
        (
            (
                f"histogram_quantile(0.95, sum by (edge, le) "
                f"(serviceline_copy_lag_seconds_bucket{{{EDGE}}}))",
                "{{edge}}",
            ),
        ),
        unit="s",
    ),
    Panel(
        "Lag of delivered changes, p50 (simulated)",
        "The median lag of every change delivered so far, per edge.",
        (
            (
                f"histogram_quantile(0.5, sum by (edge, le) "
                f"(serviceline_copy_lag_seconds_bucket{{{EDGE}}}))",
                "{{edge}}",
            ),
        ),
        unit="s",
    ),
    Panel(
        "Keys drifting, by class",
        "Keys whose copy differs from its owner's record, at the dashboard's latest check: "
        "stale, diverged, orphaned, missing.",
        (
            (
                f'sum by (edge, class) (serviceline_drift_records{{{EDGE}, class!="in_sync"}})',
                "{{edge}} {{class}}",
            ),
        ),
        stacked=True,
    ),
    Panel(
        "Changes waiting",
        "Owner changes each copy does not hold yet, and the age of the oldest on the "
        "simulated clock.",
        (
            (f"serviceline_copy_changes_waiting{{{EDGE}}}", "{{edge}}"),
            (f"serviceline_copy_oldest_waiting_age_seconds{{{EDGE}}} / 3600", "{{edge}} oldest, h"),
        ),
    ),
    Panel(
        "Requests per applied record",
        "What each record a copy took in cost in requests to its owner: a mechanism's price.",
        (
            (
                f"sum by (edge) (serviceline_copy_requests_total{{{EDGE}}}) / clamp_min(sum by "
                f"(edge) (serviceline_copy_records_applied_total{{{EDGE}}}), 1)",
                "{{edge}}",
            ),
        ),
        kind="bargauge",
    ),
    Panel(
        "Bytes received per edge",
        "Response bytes each edge's runs received from its owner, in all.",
        ((f"sum by (edge) (serviceline_copy_received_bytes_total{{{EDGE}}})", "{{edge}}"),),
        unit="bytes",
        kind="bargauge",
    ),
    Panel(
        "Runs that found nothing",
        "The share of each edge's finished runs that changed nothing in the copy.",
        (
            (
                f"sum by (edge) (serviceline_copy_empty_runs_total{{{EDGE}}}) / clamp_min(sum by "
                f'(edge) (serviceline_copy_runs_total{{{EDGE}, outcome="finished"}}), 1)',
                "{{edge}}",
            ),
        ),
        unit="percentunit",
        kind="bargauge",
    ),
    Panel(
        "Failed runs and retries",
        "Copy runs that failed part way, and the retries they led to, with back-off on the "
        "simulated clock.",
        (
            (
                f'sum by (edge) (serviceline_copy_runs_total{{{EDGE}, outcome="failed"}})',
                "{{edge}} failed",
            ),
            (f"sum by (edge) (serviceline_copy_retries_total{{{EDGE}}})", "{{edge}} retries"),
        ),
    ),
    Panel(
        "Simulated clock",
        "Each service's simulated time: they move together when the line's clock advances.",
        (("serviceline_clock_timestamp_seconds * 1000", "{{service}}"),),
        unit="dateTimeAsIso",
        kind="stat",
    ),
    Panel(
        "HTTP requests by route",
        "Requests each service answered per second of wall time, by route template and status.",
        (
            (
                "sum by (service, route, status) (rate(serviceline_http_requests_total[5m]))",
                "{{service}} {{route}} {{status}}",
            ),
        ),
        unit="reqps",
    ),
)


def _panel(index: int, panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.stacked:
        defaults["custom"] = {"stacking": {"mode": "normal"}, "fillOpacity": 30}
    body: dict[str, Any] = {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": WIDTH, "x": index % 2 * WIDTH, "y": index // 2 * HEIGHT},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(65 + n)}
            for n, (expr, legend) in enumerate(panel.queries)
        ],
    }
    if panel.kind == "bargauge":
        body["options"] = {"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}}
    return body


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model, every panel chosen by the `edge` variable."""
    return {
        "uid": DASHBOARD_UID,
        "title": "serviceline: lag, drift and cost per edge",
        "description": "The line's copy edges as its services' and its dashboard's /metrics say",
        "tags": ["serviceline"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "edge",
                    "label": "edge",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(serviceline_copy_runs_total, edge)",
                        "refId": "edges",
                    },
                    "definition": "label_values(serviceline_copy_runs_total, edge)",
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "sort": 1,
                }
            ]
        },
        "panels": [_panel(index, panel) for index, panel in enumerate(PANELS)],
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def datasources(prometheus_url: str) -> dict[str, Any]:
    """Grafana's provisioned data source: the stack's Prometheus."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
            }
        ],
    }


def dashboard_provider(path: str) -> dict[str, Any]:
    """Grafana's provisioned dashboards: the JSON files in `path`."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "serviceline",
                "folder": "serviceline",
                "type": "file",
                "disableDeletion": True,
                "options": {"path": path},
            }
        ],
    }


def expressions() -> list[str]:
    """Every PromQL expression of the dashboard, with `$edge` meaning every edge."""
    return [expr.replace("$edge", ".*") for panel in PANELS for expr, _ in panel.queries]
