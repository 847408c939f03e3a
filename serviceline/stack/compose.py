"""The docker compose stack, written from the topology: one image, a database and role each."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from serviceline.dashboard.process import DASHBOARD, dashboard_env
from serviceline.model.lines import Line, is_line_file
from serviceline.model.topology import Service, Topology
from serviceline.stack.launcher import LineConfig, service_command, service_env, service_identity
from serviceline.telemetry import grafana

COMPOSE_FILE = Path("docker-compose.yml")
POSTGRES_INIT = Path("deploy/postgres/init.sql")
PROMETHEUS_CONFIG = Path("deploy/prometheus/prometheus.yml")
GRAFANA_PROVISIONING = Path("deploy/grafana/provisioning")
GRAFANA_DATASOURCES = GRAFANA_PROVISIONING / "datasources/prometheus.yml"
GRAFANA_PROVIDERS = GRAFANA_PROVISIONING / "dashboards/serviceline.yml"
GRAFANA_DASHBOARDS = Path("deploy/grafana/dashboards")
GRAFANA_DASHBOARD = GRAFANA_DASHBOARDS / "serviceline.json"
# where Grafana's container reads the dashboards' JSON
GRAFANA_DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"
IMAGE = "serviceline"
POSTGRES_IMAGE = "postgres:15-bookworm"
POSTGRES = "postgres"
SEED = "seed"
# `docker compose --profile observability up`: Prometheus scraping every /metrics, and Grafana
OBSERVABILITY = "observability"
PROMETHEUS = "prometheus"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
PROMETHEUS_PORT = 9090
GRAFANA = "grafana"
GRAFANA_IMAGE = "grafana/grafana:11.2.0"
GRAFANA_PORT = 3000
# and Jaeger, receiving every service's spans by OTLP/HTTP and showing the traces
JAEGER = "jaeger"
JAEGER_IMAGE = "jaegertracing/all-in-one:1.62.0"
JAEGER_UI_PORT = 16686
JAEGER_OTLP_PORT = 4318
# its admin port, answering its health check
JAEGER_ADMIN_PORT = 14269
# every service exports to it unless SERVICELINE_OTLP_ENDPOINT says otherwise ("" for nowhere);
# without the profile the name resolves to nothing and each batch of spans is dropped
OTLP_ENDPOINT = f"${{SERVICELINE_OTLP_ENDPOINT-http://{JAEGER}:{JAEGER_OTLP_PORT}}}"
PROMETHEUS_URL = f"http://{PROMETHEUS}:{PROMETHEUS_PORT}"
# Prometheus's own default; a test's Prometheus scrapes a native line far more often
SCRAPE_INTERVAL = "15s"
# a scrape of the dashboard may wait for a drift check; the job's timeout must not be shorter
SCRAPE_TIMEOUT = "10s"
ANCHOR = "serviceline"
# where a line written as a file is mounted, read-only, in every container of its stack
LINE_MOUNT = PurePosixPath("/etc/serviceline")
HEALTHY = {"condition": "service_healthy"}
# failures while a server starts do not count; after that, five in a row make it unhealthy
TIMING = {"interval": "2s", "timeout": "5s", "retries": 5, "start_period": "120s"}
# unquoted only where no YAML reader could take the text for anything but a string
PLAIN = re.compile(r"\.|[A-Za-z_][A-Za-z0-9_.-]*|[0-9]+[a-z]+")
# words YAML 1.1 (docker-compose 1.x) would read as booleans or null
RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


@dataclass(frozen=True)
class StackSource:
    """What a stack is built from, as seen from the folder its files are written to: the folder
    holding the Dockerfile, and the line each container is told it runs."""

    context: str = "."
    # the line's name, or its file (relative to the stack's folder); empty: the one installed
    line: str = ""

    @classmethod
    def of(cls, line: str, folder: Path, repository: Path) -> StackSource:
        """The stack of `line` written to `folder`, its image built from `repository`."""
        context = _relative(repository, folder)
        return cls(context, _relative(Path(line), folder) if is_line_file(line) else line)

    @property
    def told(self) -> str:
        """The line each container is told it runs: a line file by where it is mounted."""
        if is_line_file(self.line):
            return str(LINE_MOUNT / PurePosixPath(self.line).name)
        return self.line

    @property
    def mounts(self) -> list[str]:
        return [f"{self.line}:{self.told}:ro"] if is_line_file(self.line) else []

    @property
    def identity(self) -> dict[str, str]:
        return {"SERVICELINE_LINE": self.told} if self.told else {}


def _relative(path: Path, folder: Path) -> str:
    """`path` as compose reads it from a file in `folder`: a bind mount's source starts `.`."""
    relative = Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    return relative if relative.startswith(".") else f"./{relative}"


def role_password(service: str) -> str:
    """A service's database password: the stack is a local model, its secrets are not secret."""
    return f"{service}-secret"


def database_url(service: str) -> str:
    credentials = f"{service}:{role_password(service)}"
    return f"postgresql+psycopg://{credentials}@{POSTGRES}:5432/{service}"


def host_port_variable(service: Service) -> str:
    """The variable that moves where a service is published on the host, e.g. FIND_HOST_PORT."""
    return f"{service.name.upper()}_HOST_PORT"


def stack_config(topology: Topology) -> LineConfig:
    """The line as compose runs it: every service listens on all interfaces of its container."""
    urls = {service.name: database_url(service.name) for service in topology.services}
    return LineConfig(
        Path(".state"),
        host="0.0.0.0",
        service_hosts=True,
        database_urls=urls,
        otlp_endpoint=OTLP_ENDPOINT,
    )


def postgres_init(topology: Topology) -> str:
    """SQL run once on a new volume: each service's role may connect to its own database only."""
    lines = [
        "-- written by `serviceline compose` from the topology; do not edit",
        "",
    ]
    for service in topology.services:
        name = service.name
        lines += [
            f"CREATE ROLE {name} LOGIN PASSWORD '{role_password(name)}';",
            f"CREATE DATABASE {name} OWNER {name};",
            f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;",
            "",
        ]
    return "\n".join(lines)


def compose_file(line: Line, source: StackSource) -> str:
    config = stack_config(line.topology)
    servers = {s.name: _server(config, s, line, source) for s in line.topology.services}
    shared = {"image": IMAGE, "build": source.context}
    document = {
        f"x-{ANCHOR}": Anchored(ANCHOR, shared | _volumes(source.mounts)),
        "services": {
            POSTGRES: {
                "image": POSTGRES_IMAGE,
                "environment": {"POSTGRES_PASSWORD": "postgres"},
                "volumes": [
                    f"./{POSTGRES_INIT.parent}:/docker-entrypoint-initdb.d:ro",
                    "postgres-data:/var/lib/postgresql/data",
                ],
                # TCP, not the socket: the image's first start serves the socket alone while it
                # runs the init scripts
                "healthcheck": {
                    "test": ["CMD", "pg_isready", "--host", "127.0.0.1", "--username", "postgres"],
                    **TIMING,
                },
            },
            **servers,
            DASHBOARD.name: _http_server(
                config,
                DASHBOARD,
                source.identity | dashboard_env(config),
                # it draws the whole line, so it waits for every service
                dict.fromkeys(servers, HEALTHY),
            ),
            SEED: {
                "<<": Alias(ANCHOR),
                "command": [
                    "serviceline",
                    "seed",
                    "--service-hosts",
                    "--if-new",
                    "--size",
                    "${SERVICELINE_SIZE:-small}",
                ],
                **({"environment": source.identity} if source.identity else {}),
                "depends_on": dict.fromkeys(servers, HEALTHY),
            },
            PROMETHEUS: _prometheus(),
            GRAFANA: _grafana(),
            JAEGER: _jaeger(),
        },
        "volumes": {"postgres-data": {}, "prometheus-data": {}},
    }
    header = (
        "# The line in containers: `docker compose up --build`, then the dashboard on port 8100\n"
        "# and each service's /docs on its own port. `docker compose --profile observability up\n"
        f"# --build` adds Prometheus (port {PROMETHEUS_PORT}), Grafana (port {GRAFANA_PORT}) and\n"
        f"# Jaeger (port {JAEGER_UI_PORT}), which every service sends its spans to.\n"
        "# Written by `serviceline compose` from the line's topology; do not edit.\n"
    )
    return header + "\n".join(_yaml(document, 0)) + "\n"


def _server(
    config: LineConfig, service: Service, line: Line, source: StackSource
) -> dict[str, Any]:
    """A service of the line: after PostgreSQL and every service it reads from or commands."""
    topology = line.topology
    needs = dict.fromkeys((POSTGRES, *topology.upstreams(service.name)), HEALTHY)
    identity = service_identity(service, line=source.told)
    links = line.service(service.name).settings.links
    environment = identity | service_env(config, service, topology, None, links=links)
    return _http_server(config, service, environment, needs)


def _volumes(mounts: list[str]) -> dict[str, Any]:
    return {"volumes": mounts} if mounts else {}


def _http_server(
    config: LineConfig,
    service: Service,
    environment: Mapping[str, str],
    depends_on: Mapping[str, Any],
) -> dict[str, Any]:
    port = config.port(service)
    health = f"http://127.0.0.1:{port}/health"
    probe = f"import urllib.request; urllib.request.urlopen({health!r}, timeout=4)"
    return {
        "<<": Alias(ANCHOR),
        "command": service_command(config, service, "python"),
        "environment": environment,
        # loopback only: the admin API moves the clock with a well-known token
        "ports": [f"127.0.0.1:${{{host_port_variable(service)}:-{port}}}:{port}"],
        "healthcheck": {"test": ["CMD", "python", "-c", probe], **TIMING},
        "depends_on": depends_on,
    }


def _prometheus() -> dict[str, Any]:
    """Prometheus, scraping the scrape configuration written from the topology."""
    ready = f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"
    return {
        "image": PROMETHEUS_IMAGE,
        "profiles": [OBSERVABILITY],
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
        ],
        "volumes": [
            f"./{PROMETHEUS_CONFIG}:/etc/prometheus/prometheus.yml:ro",
            "prometheus-data:/prometheus",
        ],
        "ports": [f"127.0.0.1:${{PROMETHEUS_HOST_PORT:-{PROMETHEUS_PORT}}}:{PROMETHEUS_PORT}"],
        # the image is busybox's: wget, not curl
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", ready], **TIMING},
    }


def _grafana() -> dict[str, Any]:
    """Grafana, its data source and the line's dashboard provisioned from the repository."""
    health = f"http://127.0.0.1:{GRAFANA_PORT}/api/health"
    dashboards = GRAFANA_DASHBOARDS_MOUNT
    return {
        "image": GRAFANA_IMAGE,
        "profiles": [OBSERVABILITY],
        # a local model: whoever reaches loopback may look, and sign in as admin to edit
        "environment": {
            "GF_AUTH_ANONYMOUS_ENABLED": "true",
            "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": f"{dashboards}/{GRAFANA_DASHBOARD.name}",
        },
        "volumes": [
            f"./{GRAFANA_PROVISIONING}:/etc/grafana/provisioning:ro",
            f"./{GRAFANA_DASHBOARDS}:{dashboards}:ro",
        ],
        "ports": [f"127.0.0.1:${{GRAFANA_HOST_PORT:-{GRAFANA_PORT}}}:{GRAFANA_PORT}"],
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", health], **TIMING},
        "depends_on": {PROMETHEUS: HEALTHY},
    }


def _jaeger() -> dict[str, Any]:
    """Jaeger all-in-one: OTLP/HTTP in from the services, its UI on loopback; its OTLP port
    too, for a native line (`serviceline up --otlp-endpoint http://localhost:4318`)."""
    health = f"http://127.0.0.1:{JAEGER_ADMIN_PORT}/"
    otlp = JAEGER_OTLP_PORT
    return {
        "image": JAEGER_IMAGE,
        "profiles": [OBSERVABILITY],
        "environment": {"COLLECTOR_OTLP_ENABLED": "true"},
        "ports": [
            f"127.0.0.1:${{JAEGER_HOST_PORT:-{JAEGER_UI_PORT}}}:{JAEGER_UI_PORT}",
            f"127.0.0.1:${{JAEGER_OTLP_HOST_PORT:-{otlp}}}:{otlp}",
        ],
        # the image is Alpine's: busybox's wget
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", health], **TIMING},
    }


def scrape_config(
    config: LineConfig,
    topology: Topology,
    services: Collection[str] | None = None,
    *,
    interval: str = SCRAPE_INTERVAL,
) -> dict[str, Any]:
    """Prometheus's configuration: every service's /metrics and the dashboard's, where `config`
    says each listens (all of the line's, or those named), each target labelled `service`."""
    chosen = [s for s in topology.services if services is None or s.name in services]
    targets = [
        {"targets": [_address(config, service)], "labels": {"service": service.name}}
        for service in [*chosen, DASHBOARD]
    ]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "serviceline",
                "metrics_path": "/metrics",
                "scrape_timeout": _shorter(SCRAPE_TIMEOUT, interval),
                "static_configs": targets,
            }
        ],
    }


def _address(config: LineConfig, service: Service) -> str:
    return config.url(service).removeprefix("http://")


def _shorter(timeout: str, interval: str) -> str:
    """Prometheus refuses a scrape timeout longer than the interval."""
    seconds = {text: int(text.removesuffix("s")) for text in (timeout, interval)}
    return timeout if seconds[timeout] <= seconds[interval] else interval


def scrape_yaml(config: LineConfig, topology: Topology, **options: Any) -> str:
    header = "# written by `serviceline compose` from the topology; do not edit\n"
    return header + yaml.safe_dump(scrape_config(config, topology, **options), sort_keys=False)


def _provisioned(document: Mapping[str, Any]) -> str:
    header = "# written by `serviceline compose`; do not edit\n"
    return header + yaml.safe_dump(dict(document), sort_keys=False)


@dataclass(frozen=True)
class Anchored:
    """A mapping YAML names (`&name`) so that other mappings can merge it."""

    name: str
    value: Mapping[str, Any]


@dataclass(frozen=True)
class Alias:
    """A reference (`*name`) to an anchored mapping."""

    name: str


def _yaml(value: Mapping[str, Any], indent: int) -> list[str]:
    """Block mappings; lists and quoted strings as JSON, which YAML reads as they are."""
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, Anchored):
            lines.append(f"{pad}{key}: &{item.name}")
            lines += _yaml(item.value, indent + 2)
        elif isinstance(item, Alias):
            lines.append(f"{pad}{key}: *{item.name}")
        elif isinstance(item, Mapping) and item:
            lines.append(f"{pad}{key}:")
            lines += _yaml(item, indent + 2)
        else:
            lines.append(f"{pad}{key}: {_scalar(item)}")
    return lines


def _scalar(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, str) and not (PLAIN.fullmatch(value) and value.lower() not in RESERVED):
        return json.dumps(value)
    return str(value)


def stack_files(line: Line, source: StackSource) -> dict[Path, str]:
    """Every file of the stack written from the line, by its path in the stack's folder."""
    topology = line.topology
    return {
        COMPOSE_FILE: compose_file(line, source),
        POSTGRES_INIT: postgres_init(topology),
        PROMETHEUS_CONFIG: scrape_yaml(stack_config(topology), topology),
        GRAFANA_DATASOURCES: _provisioned(grafana.datasources(PROMETHEUS_URL)),
        GRAFANA_PROVIDERS: _provisioned(grafana.dashboard_provider(GRAFANA_DASHBOARDS_MOUNT)),
        GRAFANA_DASHBOARD: grafana.dashboard_json(),
    }


def write(folder: Path, line: Line, source: StackSource) -> list[Path]:
    written = []
    for path, text in stack_files(line, source).items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
