"""Debian's Prometheus scraping a native line with the scrape configuration compose is given."""

import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.dashboard.process import RunningDashboard
from serviceline.stack.compose import PROMETHEUS_CONFIG, scrape_yaml
from serviceline.stack.launcher import LineConfig, RunningLine
from serviceline.telemetry import grafana
from serviceline.testing import ADMIN_TOKEN, API, API_TOKEN, ROOT, line_and_dashboard
from tests import builders

pytestmark = pytest.mark.e2e
PROMETHEUS = Path("/usr/bin/prometheus")
PROMTOOL = Path("/usr/bin/promtool")
MISSING = "is missing: `make test` installs Debian's prometheus"
NAMES = ["publish", "find", "apply"]
FIND = "publish.course.find"
APPLY = "publish.course.apply"
# scraped every second, the figures of a step reach Prometheus within a few
WAIT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def line(tmp_path: Path, port_offset: int) -> Iterator[tuple[RunningLine, RunningDashboard]]:
    with line_and_dashboard(tmp_path / "state", NAMES, port_offset) as both:
        yield both


@pytest.fixture
def prometheus(tmp_path: Path, port_offset: int) -> Iterator[httpx.Client]:
    """Prometheus on a free port, scraping the line's services and dashboard every second."""
    assert PROMETHEUS.exists(), f"{PROMETHEUS} {MISSING}"
    # the line as line_and_dashboard starts it: where each service listens is all that counts
    config = LineConfig(
        tmp_path / "state", admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=port_offset
    )
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(
        scrape_yaml(config, LINE, services=NAMES, interval="1s"), encoding="utf-8"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(PROMETHEUS),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            until(lambda: _ready(client, process), "Prometheus to be ready")
            yield client
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, f"Prometheus exited with {process.returncode}"
    try:
        return client.get("/-/ready").status_code == 200
    except httpx.TransportError:
        return False


def until(check: Any, what: str, timeout: float = WAIT) -> Any:
    """Ask `check` until it gives something true; that is returned."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.5)


def query(client: httpx.Client, promql: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus's HTTP API: its result vector."""
    response = client.get("/api/v1/query", params={"query": promql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(client: httpx.Client, promql: str) -> float | None:
    """The one value an instant query gives, or None while it gives none."""
    result = query(client, promql)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def test_the_generated_scrape_configuration_is_valid_for_prometheus() -> None:
    assert PROMTOOL.exists(), f"{PROMTOOL} {MISSING}"
    checked = subprocess.run(
        [str(PROMTOOL), "check", "config", str(ROOT / PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_reads_a_lag_histogram_and_a_drift_gauge_of_a_named_edge(
    line: tuple[RunningLine, RunningDashboard], prometheus: httpx.Client
) -> None:
    running, dashboard = line
    publish = running.urls()["publish"]
    with httpx.Client(timeout=60) as client:
        for body, path in (
            (builders.provider(), "/providers"),
            (builders.site(), "/providers/2FR/sites"),
            (builders.course(), "/providers/2FR/courses"),
        ):
            made = client.post(publish + path, json=body, headers=API)
            assert made.is_success, made.text
        uuid = made.json()["uuid"]

        # every target answers its /metrics
        def up() -> set[str]:
            return {t["metric"]["service"] for t in query(prometheus, "up") if t["value"][1] == "1"}

        until(lambda: up() == {*NAMES, "dashboard"}, "every target to be up")

        moved = client.post(f"{dashboard.url}/clock/advance", params={"by": "1h"})
        assert moved.status_code == 303, moved.text
        # Find follows Publish's feed every 5 minutes: every change made at 00:00 was held at 00:05
        bucket = f'serviceline_copy_lag_seconds_bucket{{edge="{FIND}"'
        delivered = until(
            lambda: scalar(prometheus, f'{bucket},le="+Inf"}}'), "Find's lag histogram"
        )
        assert scalar(prometheus, f'{bucket},le="300.0"}}') == delivered
        assert scalar(prometheus, f'{bucket},le="60.0"}}') == 0
        p95 = scalar(
            prometheus,
            f"histogram_quantile(0.95, sum by (le) ({bucket}}}))",
        )
        assert p95 is not None
        assert 60 < p95 <= 300
        # Find's last scrape may predate the advance by up to a scrape interval
        one_oclock = datetime(2026, 10, 5, 1, tzinfo=UTC).timestamp()
        clock = 'serviceline_clock_timestamp_seconds{service="find"}'
        until(lambda: scalar(prometheus, clock) == one_oclock, "Find's clock at 01:00")

        # a rename waits at Publish: Apply's copy is stale until its next 10-minute poll
        renamed = {"name": "Art, Craft and Design"}
        patched = client.patch(f"{publish}/courses/{uuid}", json=renamed, headers=API)
        assert patched.is_success, patched.text
        stale = f'serviceline_drift_records{{edge="{APPLY}",class="stale"}}'
        until(lambda: scalar(prometheus, stale) == 1, "Apply's copy to be stale")
        assert scalar(prometheus, f'serviceline_copy_changes_waiting{{edge="{APPLY}"}}') == 1
        moved = client.post(f"{dashboard.url}/clock/advance", params={"by": "10m"})
        assert moved.status_code == 303, moved.text
        until(lambda: scalar(prometheus, stale) == 0, "Apply's copy to be in sync again")

        # every panel of the Grafana dashboard has something to draw
        for expression in grafana.expressions():
            assert query(prometheus, expression), expression
