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

    def port(self, service: Service) -> int:
        return service.port + self.port_offset

    def url(self, service: Service) -> str:
        return f"http://{self.host}:{self.port(service)}"


def service_env(
    config: LineConfig, service: Service, topology: Topology, anchor: float
) -> dict[str, str]:
    """The environment one service process reads its settings from."""
    prefix = f"{service.name.upper()}_"
    values: dict[str, Any] = {
        "HOST": config.host,
        "PORT": config.port(service),
        "STATE_DIR": str(config.state_dir),
        "ADMIN_TOKEN": config.admin_token,
        "API_TOKEN": config.api_token,
        "CLOCK_MODE": config.clock_mode,
        "CLOCK_SPEED": config.clock_speed,
        "CLOCK_ANCHOR": anchor,
        "UPSTREAMS": json.dumps(
            {name: config.url(topology.service(name)) for name in topology.upstreams(service.name)}
        ),
    }
    if service.name in config.database_urls:
        values["DATABASE_URL"] = config.database_urls[service.name]
    return {prefix + name: str(value) for name, value in values.items()}


@dataclass
class RunningLine:
    config: LineConfig
    processes: dict[str, subprocess.Popen[bytes]]
    topology: Topology = LINE

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
    line = RunningLine(config, processes, topology)
    try:
        for service in services:
            env = {**os.environ, **service_env(config, service, topology, anchor)}
            with (logs / f"{service.name}.log").open("ab") as log:
                processes[service.name] = subprocess.Popen(
                    [
                        sys.executable,
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
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        _wait_healthy(line, timeout)
    except BaseException:
        line.stop()
        raise
    record = {
        "launcher": os.getpid(),
        "services": {name: process.pid for name, process in processes.items()},
    }
    (config.state_dir / LINE_FILE).write_text(json.dumps(record))
    return line


def _wait_healthy(line: RunningLine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = dict(line.urls())
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            if line.exited():
                failed = ", ".join(f"{n} (exit {c})" for n, c in line.exited().items())
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
    targets = [record["launcher"]] if _alive(record["launcher"]) else list(services.values())
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in [*targets, *services.values()]):
        if time.monotonic() > deadline:
            raise LaunchError(f"the line did not stop within {timeout:.0f}s")
        time.sleep(0.1)
    path.unlink(missing_ok=True)
    return list(services)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
