"""Settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

from pydantic import AnyHttpUrl, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

CLOCK_START = datetime(2026, 10, 5, tzinfo=UTC)


class ClockMode(StrEnum):
    MANUAL = "manual"
    REALTIME = "realtime"


class ServiceSettings(BaseSettings):
    """What every service process is told at start-up."""

    model_config = SettingsConfigDict(env_prefix="SERVICELINE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 0
    state_dir: Path = Path(".state")
    database_url: str = ""
    admin_token: str = "admin-secret"
    api_token: str = "api-secret"
    # the drift auditor's and the dashboard's: reads every service, writes none
    auditor_token: str = "auditor-secret"
    # the token each client service presents here, by name, where not credentials.credential's
    api_clients: dict[str, str] = Field(default_factory=dict)
    upstreams: dict[str, str] = Field(default_factory=dict)
    # the services whose pages this one links people to, and where a person reaches each
    links: ClassVar[tuple[str, ...]] = ()
    public_urls: dict[str, str] = Field(default_factory=dict)
    # the token this service presents to each upstream, where not credentials.credential's
    upstream_tokens: dict[str, str] = Field(default_factory=dict)
    clock_mode: ClockMode = ClockMode.MANUAL
    clock_start: datetime = CLOCK_START
    clock_speed: float = 3600.0
    clock_anchor: float | None = None
    recruitment_cycle_year: int = 2027
    feed_retention: int = 100_000
    page_size: int = 500
    # a poll of an owner whose change log has not moved since a run that found nothing is not
    # made: the simulation knows its answer (serviceline.consumer.copier.Look.repeats)
    skip_quiet_polls: bool = True
    # edges read another way than the line's own, as Topology.with_overrides takes them
    edge_overrides: dict[str, str] = Field(default_factory=dict)
    # traces (serviceline.telemetry.tracing): spans exported by OTLP/HTTP to this base URL, e.g.
    # http://localhost:4318; `tracing` alone records them for an exporter of the caller's own
    otlp_endpoint: str = ""
    tracing: bool = False
    # OpenLineage events of every copy run (serviceline.telemetry.lineage): POSTed to an endpoint
    # (a base URL such as Marquez's gets /api/v1/lineage), appended to a file, one JSON event a
    # line, or both; neither set, none is made
    lineage_url: AnyHttpUrl | None = None
    lineage_file: Path | None = None
    lineage_namespace: str = "serviceline"

    def reads_through(self) -> frozenset[str]:
        """The entities this service asks their owner for live instead of keeping a copy."""
        return frozenset()

    def database_url_for(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        return sqlite_url(self.state_dir, service)


def sqlite_url(state_dir: Path, name: str) -> str:
    return f"sqlite:///{state_dir / f'{name}.db'}"
