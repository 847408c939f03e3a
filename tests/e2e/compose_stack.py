"""A line's stack under docker-compose, for the smoke tests: started, watched and always removed."""

import json
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from serviceline.dashboard.process import DASHBOARD
from serviceline.model.topology import Service
from serviceline.stack.compose import OBSERVABILITY, POSTGRES, SEED, host_port_variable
from serviceline.stack.launcher import free_port_offset


@dataclass
class ComposeStack:
    """One compose project: its file, its servers, published on ports free when it was made."""

    project: str
    file: Path
    servers: Sequence[Service]
    offset: int = field(default_factory=free_port_offset)
    timings: dict[str, float] = field(default_factory=dict)

    def url(self, service: Service) -> str:
        return f"http://127.0.0.1:{service.port + self.offset}"

    @property
    def dashboard_url(self) -> str:
        return self.url(DASHBOARD)

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = time.monotonic() - started

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        ports = {
            host_port_variable(s): str(s.port + self.offset) for s in (*self.servers, DASHBOARD)
        }
        command = ["docker-compose", "--project-name", self.project, "--file", str(self.file)]
        done = subprocess.run(
            [*command, *args],
            cwd=self.file.parent,
            env={**os.environ, **ports},
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(f"docker-compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def containers(self) -> dict[str, dict[str, object]]:
        """Each container of the stack by service: its state and, for servers, its health."""
        ids = self.compose("ps", "--quiet").stdout.split()
        found = {}
        for item in json.loads(docker("inspect", *ids)) if ids else []:
            name = item["Config"]["Labels"]["com.docker.compose.service"]
            found[name] = {
                "status": item["State"]["Status"],
                "exit_code": item["State"]["ExitCode"],
                "health": (item["State"].get("Health") or {}).get("Status"),
            }
        return found

    def wait_until_healthy(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        names = [POSTGRES, *(s.name for s in self.servers), DASHBOARD.name]
        while True:
            state = self.containers()
            waiting = [n for n in names if n not in state or state[n]["health"] != "healthy"]
            if not waiting:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"not healthy after {timeout:.0f}s: {', '.join(waiting)}")
            time.sleep(2)

    def run_seed_job(self, timeout: float = 600.0) -> str:
        """Start the seeding job, wait for it to finish, and return what it printed."""
        self.compose("up", "--detach", SEED)
        deadline = time.monotonic() + timeout
        while (job := self.containers()[SEED])["status"] != "exited":
            if time.monotonic() > deadline:
                pytest.fail(f"the seeding job still runs after {timeout:.0f}s")
            time.sleep(2)
        printed = self.compose("logs", "--no-color", SEED).stdout
        assert job["exit_code"] == 0, printed
        return printed


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def ensure_docker() -> None:
    """No engine is a failure, never a skip: the smoke test is skipped only by not asking for it."""
    for command in (["docker", "info"], ["docker-compose", "version"]):
        try:
            subprocess.run(command, capture_output=True, check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            pytest.fail(
                f"Docker is needed ({' '.join(command)}: {error}); where "
                "../shared/tools/standin-images exists, `make compose-smoke` as root prepares it"
            )


@contextmanager
def running(stack: ComposeStack, request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    """Every server and the dashboard up and healthy; the seeding job is left to its test."""
    ensure_docker()
    capture = request.config.pluginmanager.getplugin("capturemanager")
    failed_before = request.session.testsfailed
    stack.compose("down", "--volumes", "--remove-orphans")  # what an interrupted run left behind
    stack.compose("config", "--quiet")
    # the profile's Prometheus and Grafana are checked, not started: their images stay unpulled
    stack.compose("--profile", OBSERVABILITY, "config", "--quiet")
    servers = [s.name for s in stack.servers]
    passed = False
    try:
        started = time.monotonic()
        # every service runs the one image: building it for one builds it for all
        stack.compose("build", servers[0])
        stack.timed("build", started)
        started = time.monotonic()
        stack.compose("up", "--detach", *servers, DASHBOARD.name)
        stack.timed("up", started)
        started = time.monotonic()
        stack.wait_until_healthy()
        stack.timed("all healthy", started)
        yield stack
        passed = request.session.testsfailed == failed_before
    finally:
        tail = ["logs", "--no-color", "--tail", "40"]
        logs = [] if passed else [stack.compose(*tail, check=False).stdout]
        started = time.monotonic()
        stack.compose("down", "--volumes", "--remove-orphans", check=False)
        stack.timed("down", started)
        lines = [
            f"{stack.project}: {phase:<12} {took:6.1f} s" for phase, took in stack.timings.items()
        ]
        # past the capture, so that the timings show whether the tests pass or not
        with capture.global_and_fixture_disabled():
            print("\n".join(["", *logs, *lines]))
        label = f"label=com.docker.compose.project={stack.project}"
        assert docker("ps", "--all", "--quiet", "--filter", label) == ""
        assert docker("volume", "ls", "--quiet", "--filter", label) == ""
