"""Starts the line natively: a process per service, fixed loopback ports, SQLite state."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from serviceline.model.lines import current_line, line_name
from serviceline.model.topology import Service, Topology
from serviceline.stack.supervision import (
    DEAD,
    Program,
    ServiceState,
    SupervisionError,
    Supervisor,
)

LINE_FILE = "line.json"
# fourteen interpreters starting at once on a busy 2-core machine can take a minute; the wait
# ends as soon as every service answers, so only a service that never does waits this long
START_TIMEOUT = 180.0


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class LineConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    admin_token: str = "admin-secret"
    api_token: str = "api-secret"
    clock_mode: str = "manual"
    clock_speed: float = 3600.0
    database_urls: Mapping[str, str] = field(default_factory=dict)
    # lets a test line run beside one started by `make up`
    port_offset: int = 0
    # the drift auditor's and the dashboard's read token
    auditor_token: str = "auditor-secret"
    # each service reached at the host named after it, as containers are in docker compose;
    # `host` is then only where each one listens
    service_hosts: bool = False
    # edge name or "*" -> "mechanism" or "mechanism@schedule", as Topology.with_overrides takes
    edge_overrides: Mapping[str, str] = field(default_factory=dict)
    # more settings for some services, by field name, e.g. {"find": {"read_through": "true"}}
    service_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # every consumer leaves out the polls it knows would find nothing (ServiceSettings)
    skip_quiet_polls: bool = True
    # every service traces and exports its spans by OTLP/HTTP here ("": none traces)
    otlp_endpoint: str = ""
    # where every service sends its copy runs' OpenLineage events: an endpoint such as
    # Marquez's base URL, a file (one JSON event a line, all services' in one), or both
    lineage_url: str | None = None
    lineage_file: Path | None = None

    def port(self, service: Service) -> int:
        return service.port + self.port_offset

    def url(self, service: Service) -> str:
        host = service.name if self.service_hosts else self.host
        return f"http://{host}:{self.port(service)}"

    def public_url(self, service: Service) -> str:
        """Where a person on this machine reaches a service: containers publish on loopback."""
        host = "127.0.0.1" if self.service_hosts or self.host == "0.0.0.0" else self.host
        return f"http://{host}:{self.port(service)}"


def service_env(
    config: LineConfig,
    service: Service,
    topology: Topology,
    anchor: float | None,
    *,
    links: Collection[str] | None = None,
) -> dict[str, str]:
    """The environment one service process reads its settings from; `links`, the services whose
    public URLs it gives out, are its own settings' unless named."""
    prefix = f"{service.name.upper()}_"
    values: dict[str, Any] = {
        "HOST": config.host,
        "PORT": config.port(service),
        "STATE_DIR": str(config.state_dir),
        "ADMIN_TOKEN": config.admin_token,
        "API_TOKEN": config.api_token,
        "AUDITOR_TOKEN": config.auditor_token,
        "CLOCK_MODE": config.clock_mode,
        "CLOCK_SPEED": config.clock_speed,
        "UPSTREAMS": json.dumps(
            {name: config.url(topology.service(name)) for name in topology.upstreams(service.name)}
        ),
    }
    if links is None:
        links = current_line().service(service.name).settings.links
    if links:
        urls = {name: config.public_url(topology.service(name)) for name in links}
        values["PUBLIC_URLS"] = json.dumps(urls)
    # without an anchor, each service's realtime clock starts when the service does
    if anchor is not None:
        values["CLOCK_ANCHOR"] = anchor
    if not config.skip_quiet_polls:  # every service's own default is on
        values["SKIP_QUIET_POLLS"] = "false"
    if service.name in config.database_urls:
        values["DATABASE_URL"] = config.database_urls[service.name]
    if config.otlp_endpoint:
        values["OTLP_ENDPOINT"] = config.otlp_endpoint
    if config.edge_overrides:
        values["EDGE_OVERRIDES"] = json.dumps(dict(config.edge_overrides))
    if config.lineage_url:
        values["LINEAGE_URL"] = config.lineage_url
    if config.lineage_file is not None:  # from where the line starts, not each service's folder
        values["LINEAGE_FILE"] = config.lineage_file.resolve()
    for name, value in config.service_settings.get(service.name, {}).items():
        values[name.upper()] = value
    return {prefix + name: str(value) for name, value in values.items()}


def service_identity(service: Service, line: str | None = None) -> dict[str, str]:
    """What tells a service's process which line it is part of (this process's, unless `line`
    says otherwise), and which of its services it is (serviceline.runtime.serve)."""
    line = line_name() if line is None else line
    return {"SERVICELINE_SERVICE": service.name} | ({"SERVICELINE_LINE": line} if line else {})


def line_topology(config: LineConfig, topology: Topology) -> Topology:
    """The line as these settings run it: edges overridden, and none for what is read live."""
    try:
        line = topology.with_overrides(config.edge_overrides)
    except ValueError as error:
        raise LaunchError(f"edge_overrides: {error}") from error
    for name, values in config.service_settings.items():
        if name not in {service.name for service in topology.services}:
            raise LaunchError(f"service_settings: no service named {name!r}")
        settings = current_line().service(name).settings
        strays = sorted(set(values) - set(settings.model_fields))
        if strays:
            raise LaunchError(f"service_settings.{name}.{strays[0]}: {name} has no such setting")
        try:
            chosen = settings.model_validate({k: _decoded(v) for k, v in values.items()})
            line = line.reading_through(name, chosen.reads_through())
        except ValidationError as error:
            first = error.errors()[0]
            field_name = ".".join(str(part) for part in first["loc"])
            raise LaunchError(f"service_settings.{name}.{field_name}: {first['msg']}") from error
    return line


def _decoded(value: str) -> Any:
    """A setting as its service reads it from the environment: JSON objects and lists decoded."""
    with contextlib.suppress(ValueError):
        decoded = json.loads(value)
        if isinstance(decoded, dict | list):
            return decoded
    return value


def service_command(config: LineConfig, service: Service, python: str) -> list[str]:
    """The command that runs one service: here as a child process, in compose as a container."""
    return [
        python,
        "-m",
        "uvicorn",
        "--factory",
        service.factory,
        "--host",
        config.host,
        "--port",
        str(config.port(service)),
        "--log-level",
        "warning",
        # longer than any client keeps a connection idle, so none is cut mid-use
        "--timeout-keep-alive",
        "75",
    ]


@dataclass
class RunningLine:
    """A line's services under its supervisord, started here or found through its state folder."""

    config: LineConfig
    supervisor: Supervisor
    # the services supervisord runs for it
    names: list[str]
    # the line as its settings run it (see line_topology): what drives it should be given this
    topology: Topology
    # when the realtime clocks started, so a service started again reads the same time
    anchor: float | None = None
    # supervisord itself, when this process started it
    process: subprocess.Popen[bytes] | None = None

    def urls(self) -> dict[str, str]:
        """Where each service that is running, or being started again, answers."""
        return {name: self._url(name) for name, state in self.states().items() if state.up}

    def _url(self, name: str) -> str:
        return self.config.url(self.topology.service(name))

    def states(self) -> dict[str, ServiceState]:
        return self.supervisor.states()

    def exited(self) -> dict[str, str]:
        """The services that died and are not being started again, with how they ended."""
        return {
            name: state.description for name, state in self.states().items() if state.state in DEAD
        }

    def wait_exited(self, name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while name not in self.exited():
            if time.monotonic() > deadline:
                raise LaunchError(f"{name} is still running after {timeout:.0f}s")
            time.sleep(0.05)

    def supervising(self) -> bool:
        return self.process is None or self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop supervisord, which stops every service first."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        (self.config.state_dir / LINE_FILE).unlink(missing_ok=True)

    def stop_service(self, name: str, *, kill: bool = False) -> None:
        """Stop one service: SIGTERM, or with `kill` SIGKILL, as a crash would stop it."""
        self._check(name)
        try:
            self.supervisor.stop(name, kill=kill)
        except SupervisionError as error:
            raise LaunchError(f"{name}: {error}") from error

    def start_service(self, name: str, timeout: float = START_TIMEOUT) -> None:
        """Start one service again, as the line started it, and return once it is healthy."""
        self._check(name)
        service = self.topology.service(name)
        if self.states()[name].up:
            raise LaunchError(f"{name} is running already")
        if not _port_free(self.config.host, self.config.port(service)):
            raise LaunchError(f"{name}'s port {self.config.port(service)} is in use")
        try:
            self.supervisor.start(name)
            _wait_healthy(self, timeout, [name])
        except BaseException:
            with contextlib.suppress(SupervisionError):
                self.supervisor.stop(name)
            raise

    def restart_service(self, name: str, timeout: float = START_TIMEOUT) -> None:
        if self.states()[name].up:
            self.stop_service(name)
        self.start_service(name, timeout)

    def _check(self, name: str) -> None:
        if name not in self.names:
            raise LaunchError(f"the line runs no {name}; it runs {', '.join(self.names)}")

    def record(self) -> None:
        """Note how to reach this line, for `serviceline down` and `stop|start` in another shell."""
        record = {
            "launcher": os.getpid(),
            "supervisord": self.supervisor.pid(),
            "host": self.config.host,
            "port_offset": self.config.port_offset,
            "services": self.names,
        }
        (self.config.state_dir / LINE_FILE).write_text(json.dumps(record))


def attach(state_dir: Path, topology: Topology) -> RunningLine:
    """The line a `serviceline up` started in `state_dir`, to stop or start its services."""
    path = state_dir / LINE_FILE
    if not path.exists():
        raise LaunchError(f"no line is running from {state_dir}; start one with `make up`")
    record = json.loads(path.read_text())
    config = LineConfig(state_dir, record["host"], port_offset=record["port_offset"])
    return RunningLine(config, Supervisor(state_dir), record["services"], topology)


def recorded_offset(state_dir: Path) -> int | None:
    """The port offset of the line a live `serviceline up` runs from `state_dir`, if any."""
    path = state_dir / LINE_FILE
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    offset: int = record["port_offset"]
    return offset if alive(record["launcher"]) else None


# the line's ports span 8100 (the dashboard) to 8114; an offset moves them all
LINE_PORTS = range(8100, 8120)


def free_port_offset(
    host: str = "127.0.0.1", ports: Iterable[int] = LINE_PORTS, preferred: int | None = None
) -> int:
    """`preferred` if all `ports` are free under it, else a random offset under which they are."""
    wanted = list(ports)
    if preferred is not None and all(_port_free(host, port + preferred) for port in wanted):
        return preferred
    # below the kernel's ephemeral range, so no outgoing connection takes a port between the
    # probe and the service's bind
    highest = ephemeral_port_start() - max(wanted) - 1
    for _ in range(200):
        offset = random.randrange(1000, highest, len(LINE_PORTS))
        if all(_port_free(host, port + offset) for port in wanted):
            return offset
    raise LaunchError("no free range of ports for a line")


def ephemeral_port_start(default: int = 32768) -> int:
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    try:
        return int(ranges.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_line(
    config: LineConfig,
    names: Iterable[str] | None = None,
    *,
    topology: Topology,
    timeout: float = START_TIMEOUT,
    restart: bool = False,
) -> RunningLine:
    """Start the services under supervisord and return once every one answers /health.

    With `restart` supervisord starts a service that dies again, as a supervisor does; without,
    one that dies stays down until asked, as tests of crashes want.
    """
    services = [s for s in topology.services if names is None or s.name in set(names)]
    busy = [
        f"{s.name} ({config.port(s)})"
        for s in services
        if not _port_free(config.host, config.port(s))
    ]
    if busy:
        raise LaunchError(
            f"ports in use: {', '.join(busy)}; is a line already running? try `make down`"
        )
    config.state_dir.mkdir(parents=True, exist_ok=True)
    (config.state_dir / "logs").mkdir(exist_ok=True)
    anchor = time.time()
    programs = [
        Program(s.name, service_command(config, s, sys.executable), service_identity(s))
        for s in services
    ]
    # each service reads only the variables named after it, so one environment serves them all
    env = {k: v for s in services for k, v in service_env(config, s, topology, anchor).items()}
    try:
        supervisor, process = Supervisor.launch(config.state_dir, programs, env, restart=restart)
    except SupervisionError as error:
        raise LaunchError(str(error)) from error
    chosen = [s.name for s in services]
    line = RunningLine(config, supervisor, chosen, line_topology(config, topology), anchor, process)
    try:
        _wait_healthy(line, timeout, chosen)
        line.record()
    except BaseException:
        line.stop()
        raise
    return line


def _wait_healthy(line: RunningLine, timeout: float, names: list[str]) -> None:
    deadline = time.monotonic() + timeout
    waiting = {name: line._url(name) for name in names}
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            exited = {n: c for n, c in line.exited().items() if n in names}
            if exited:
                raise LaunchError(_exited_report(line.config.state_dir / "logs", exited))
            for name, url in list(waiting.items()):
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        del waiting[name]
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise LaunchError(f"not healthy after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.1)


def _exited_report(log_dir: Path, exited: dict[str, str], lines: int = 20) -> str:
    failed = ", ".join(f"{name} ({how})" for name, how in exited.items())
    report = [f"service exited during start-up: {failed}; see {log_dir}"]
    for name in exited:
        log = log_dir / f"{name}.log"
        said = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
        report += [f"--- the end of {log.name}", *said]
    return "\n".join(report)


def stop_recorded(state_dir: Path, timeout: float = 30.0) -> list[str]:
    """Stop a line started by another `serviceline up` (e.g. from `make down`)."""
    path = state_dir / LINE_FILE
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    pids = [record["supervisord"]]
    with contextlib.suppress(SupervisionError):
        pids += [state.pid for state in Supervisor(state_dir).states().values() if state.pid]
    # the launcher stops its dashboard and supervisord, which stops every service, then exits;
    # without a launcher, supervisord is told itself
    target = record["launcher"] if alive(record["launcher"]) else record["supervisord"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in [record["launcher"], *pids]):
        if time.monotonic() > deadline:
            raise LaunchError(f"the line did not stop within {timeout:.0f}s")
        time.sleep(0.1)
    path.unlink(missing_ok=True)
    services: list[str] = record["services"]
    return services


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
