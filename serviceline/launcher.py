"""Starts the line natively: a process per service, fixed loopback ports, SQLite state."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from serviceline.control import settings_class
from serviceline.topology import LINE, Service, Topology

LINE_FILE = "line.json"


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

    def port(self, service: Service) -> int:
        return service.port + self.port_offset

    def url(self, service: Service) -> str:
        host = service.name if self.service_hosts else self.host
        return f"http://{host}:{self.port(service)}"


def service_env(
    config: LineConfig, service: Service, topology: Topology, anchor: float | None
) -> dict[str, str]:
    """The environment one service process reads its settings from."""
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
    # without an anchor, each service's realtime clock starts when the service does
    if anchor is not None:
        values["CLOCK_ANCHOR"] = anchor
    if service.name in config.database_urls:
        values["DATABASE_URL"] = config.database_urls[service.name]
    if config.edge_overrides:
        values["EDGE_OVERRIDES"] = json.dumps(dict(config.edge_overrides))
    for name, value in config.service_settings.get(service.name, {}).items():
        values[name.upper()] = value
    return {prefix + name: str(value) for name, value in values.items()}


def line_topology(config: LineConfig, topology: Topology = LINE) -> Topology:
    """The line as these settings run it: edges overridden, and none for what is read live."""
    try:
        line = topology.with_overrides(config.edge_overrides)
    except ValueError as error:
        raise LaunchError(f"edge_overrides: {error}") from error
    for name, values in config.service_settings.items():
        if name not in {service.name for service in topology.services}:
            raise LaunchError(f"service_settings: no service named {name!r}")
        settings = settings_class(name, topology)
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
        f"{service.package}.main:create_app",
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
    config: LineConfig
    processes: dict[str, subprocess.Popen[bytes]]
    # the line as its settings run it (see line_topology): what drives it should be given this
    topology: Topology = LINE
    # when the realtime clocks started, so a service started again reads the same time
    anchor: float | None = None

    def urls(self) -> dict[str, str]:
        return {name: self.config.url(self.topology.service(name)) for name in self.processes}

    def stop(self, timeout: float = 10.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        (self.config.state_dir / LINE_FILE).unlink(missing_ok=True)

    def exited(self) -> dict[str, int]:
        return {
            name: code
            for name, process in self.processes.items()
            if (code := process.poll()) is not None
        }

    def stop_service(self, name: str, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop one service: SIGTERM, or with `kill` SIGKILL, as a crash would stop it."""
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.record()

    def start_service(self, name: str, timeout: float = 60.0) -> None:
        """Start one service again, as the line started it, and return once it is healthy."""
        service = self.topology.service(name)
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            raise LaunchError(f"{name} is running already")
        if not _port_free(self.config.host, self.config.port(service)):
            raise LaunchError(f"{name}'s port {self.config.port(service)} is in use")
        self.processes[name] = _spawn(self.config, service, self.topology, self.anchor)
        try:
            _wait_healthy(self, timeout, [name])
        except BaseException:
            self.stop_service(name)
            raise
        self.record()

    def record(self) -> None:
        """Note the running processes, for `serviceline down` in another shell."""
        record = {
            "launcher": os.getpid(),
            "services": {name: process.pid for name, process in self.processes.items()},
        }
        (self.config.state_dir / LINE_FILE).write_text(json.dumps(record))


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
    topology: Topology = LINE,
    timeout: float = 60.0,
) -> RunningLine:
    """Start the services and return once every one answers /health."""
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
    logs = config.state_dir / "logs"
    logs.mkdir(exist_ok=True)
    anchor = time.time()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    line = RunningLine(config, processes, line_topology(config, topology), anchor)
    try:
        for service in services:
            processes[service.name] = _spawn(config, service, topology, anchor)
        _wait_healthy(line, timeout, list(processes))
    except BaseException:
        line.stop()
        raise
    line.record()
    return line


def _spawn(
    config: LineConfig, service: Service, topology: Topology, anchor: float | None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **service_env(config, service, topology, anchor)}
    logs = config.state_dir / "logs"
    with (logs / f"{service.name}.log").open("ab") as log:
        return subprocess.Popen(
            service_command(config, service, sys.executable),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_healthy(line: RunningLine, timeout: float, names: list[str]) -> None:
    deadline = time.monotonic() + timeout
    waiting = {name: url for name, url in line.urls().items() if name in names}
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            exited = {n: c for n, c in line.exited().items() if n in names}
            if exited:
                failed = ", ".join(f"{n} (exit {c})" for n, c in exited.items())
                log_dir = line.config.state_dir / "logs"
                raise LaunchError(f"service exited during start-up: {failed}; see {log_dir}")
            for name, url in list(waiting.items()):
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        del waiting[name]
                except httpx.TransportError:
                    pass
            if time.monotonic() > deadline:
                raise LaunchError(f"not healthy after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(0.1)


def stop_recorded(state_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop a line started by another `serviceline up` (e.g. from `make down`)."""
    path = state_dir / LINE_FILE
    if not path.exists():
        return []
    record = json.loads(path.read_text())
    services: dict[str, int] = record["services"]
    # the launcher stops its own services cleanly and then exits
    targets = [record["launcher"]] if alive(record["launcher"]) else list(services.values())
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in [*targets, *services.values()]):
        if time.monotonic() > deadline:
            raise LaunchError(f"the line did not stop within {timeout:.0f}s")
        time.sleep(0.1)
    path.unlink(missing_ok=True)
    return list(services)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
