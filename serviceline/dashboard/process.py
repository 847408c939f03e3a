"""Starts the dashboard as its own process beside a line the launcher started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from serviceline.model.topology import Kind, Service
from serviceline.stack.launcher import LaunchError, LineConfig, service_command

# run as the services are run, on the port below theirs
DASHBOARD = Service(
    "dashboard", "The line, live", Kind.SERVICE, 8100, "serviceline.dashboard.main:create_app"
)


def dashboard_env(config: LineConfig, **settings: Any) -> dict[str, str]:
    """The environment the dashboard reads its settings from: the line's, and any `settings`."""
    values: dict[str, Any] = {
        "HOST": config.host,
        "PORT_OFFSET": config.port_offset,
        "SERVICE_HOSTS": str(config.service_hosts).lower(),
        "ADMIN_TOKEN": config.admin_token,
        "AUDITOR_TOKEN": config.auditor_token,
        "STATE_DIR": config.state_dir,
        "EDGE_OVERRIDES": json.dumps(dict(config.edge_overrides)),
        "SERVICE_SETTINGS": json.dumps({k: dict(v) for k, v in config.service_settings.items()}),
        **({"OTLP_ENDPOINT": config.otlp_endpoint} if config.otlp_endpoint else {}),
        **{name.upper(): value for name, value in settings.items()},
    }
    return {f"DASHBOARD_{name}": str(value) for name, value in values.items()}


@dataclass
class RunningDashboard:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_dashboard(
    config: LineConfig, timeout: float = 30.0, settings: Mapping[str, Any] | None = None
) -> RunningDashboard:
    """Start the dashboard and return once it answers, as itself, at its URL."""
    log_path = config.state_dir / "logs" / "dashboard.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **dashboard_env(config, **(settings or {}))}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            service_command(config, DASHBOARD, sys.executable),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{config.host}:{config.port(DASHBOARD)}"
    dashboard = RunningDashboard(url, process)
    try:
        _wait_answering(dashboard, timeout, log_path)
    except BaseException:
        dashboard.stop()
        raise
    return dashboard


def _wait_answering(dashboard: RunningDashboard, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            code = dashboard.process.poll()
            if code is not None:
                raise LaunchError(f"the dashboard exited during start-up ({code}); see {log_path}")
            try:
                health = client.get(f"{dashboard.url}/health").json()
            except (httpx.TransportError, ValueError):
                health = None
            # another process on the port would answer too: only this one's id will do
            if health is not None and health.get("pid") == dashboard.process.pid:
                return
            if time.monotonic() > deadline:
                raise LaunchError(f"the dashboard did not answer at {dashboard.url} in {timeout}s")
            time.sleep(0.1)
