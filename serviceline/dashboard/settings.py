"""What the dashboard process is told at start-up: where the line is, and how it runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from serviceline.stack.launcher import LineConfig


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DASHBOARD_", extra="ignore")

    # where the services answer, as the launcher's LineConfig says it
    host: str = "127.0.0.1"
    port_offset: int = 0
    service_hosts: bool = False
    admin_token: str = "admin-secret"
    # what the dashboard reads with; the admin token only moves the clock and runs edges
    auditor_token: str = "auditor-secret"
    state_dir: Path = Path(".state")
    # the line as it runs: the same overrides its services were started with
    edge_overrides: dict[str, str] = Field(default_factory=dict)
    service_settings: dict[str, dict[str, str]] = Field(default_factory=dict)
    # how often an open page refreshes, and the dashboard looks for changes while one is open
    poll_seconds: float = Field(2.0, gt=0)
    # drift is checked when the line changes, and at least this often while a page is open
    recheck_seconds: float = Field(60.0, gt=0)
    # how long a page waits for the line to be looked at again before it is drawn
    fresh_seconds: float = Field(10.0, ge=0)
    # compare range checksums first: cheaper on a large line, dearer on a small one
    bisect: bool = False
    # traced as the services are (serviceline.telemetry.tracing), and off unless asked for,
    # the same way
    otlp_endpoint: str = ""
    tracing: bool = False

    def line(self) -> LineConfig:
        return LineConfig(
            self.state_dir,
            self.host,
            self.admin_token,
            port_offset=self.port_offset,
            auditor_token=self.auditor_token,
            service_hosts=self.service_hosts,
            edge_overrides=self.edge_overrides,
            service_settings=self.service_settings,
        )
