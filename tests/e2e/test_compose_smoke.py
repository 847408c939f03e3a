"""The line in containers: docker-compose builds the one image and runs every service on
PostgreSQL, a database and role each, and the dashboard; a built-in scenario passes against the
containers, and the seeding job seeds the line once. Runs with --compose (make compose-smoke);
the stack is always removed, containers, network and volume.
"""

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.dashboard.process import DASHBOARD
from serviceline.model.topology import Service
from serviceline.stack.compose import (
    COMPOSE_FILE,
    OBSERVABILITY,
    POSTGRES,
    SEED,
    host_port_variable,
    role_password,
    stack_config,
)
from serviceline.stack.launcher import free_port_offset
from serviceline.testing import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.compose, pytest.mark.timeout(1800)]

PROJECT = "servicelinesmoke"
# published on ports free when the run began, beside whatever else runs on this machine
OFFSET = free_port_offset()
# quick (30 simulated minutes, Publish and Apply): a copy over HTTP between containers, deletes
# included, and a copy kept for the application that still refers to it
SCENARIO = "site-removed"
SERVERS = [service.name for service in LINE.services]
DASHBOARD_URL = f"http://127.0.0.1:{DASHBOARD.port + OFFSET}"
STACK = stack_config(LINE)


@dataclass
class Stack:
    """The running stack, and how long each phase took."""

    timings: dict[str, float] = field(default_factory=dict)

    def url(self, service: Service) -> str:
        return f"http://127.0.0.1:{service.port + OFFSET}"

    def timed(self, phase: str, started: float) -> None:
        self.timings[phase] = time.monotonic() - started


def compose(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ports = {host_port_variable(s): str(s.port + OFFSET) for s in (*LINE.services, DASHBOARD)}
    command = ["docker-compose", "--project-name", PROJECT, "--file", str(ROOT / COMPOSE_FILE)]
    done = subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env={**os.environ, **ports},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"docker-compose {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def containers() -> dict[str, dict[str, object]]:
    """Each container of the stack by service: its state and, for servers, its health."""
    ids = compose("ps", "--quiet").stdout.split()
    found = {}
    for item in json.loads(docker("inspect", *ids)) if ids else []:
        name = item["Config"]["Labels"]["com.docker.compose.service"]
        found[name] = {
            "status": item["State"]["Status"],
            "exit_code": item["State"]["ExitCode"],
            "health": (item["State"].get("Health") or {}).get("Status"),
        }
    return found


def wait_until_healthy(timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = containers()
        waiting = [
            name
            for name in [POSTGRES, *SERVERS, DASHBOARD.name]
            if name not in state or state[name]["health"] != "healthy"
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not healthy after {timeout:.0f}s: {', '.join(waiting)}")
        time.sleep(2)


def run_seed_job(timeout: float = 600.0) -> str:
    """Start the seeding job, wait for it to finish, and return what it printed."""
    compose("up", "--detach", SEED)
    deadline = time.monotonic() + timeout
    while (job := containers()[SEED])["status"] != "exited":
        if time.monotonic() > deadline:
            pytest.fail(f"the seeding job still runs after {timeout:.0f}s")
        time.sleep(2)
    printed = compose("logs", "--no-color", SEED).stdout
    assert job["exit_code"] == 0, printed
    return printed


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


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Every server and the dashboard up and healthy; the seeding job is left to its test."""
    ensure_docker()
    capture = request.config.pluginmanager.getplugin("capturemanager")
    running = Stack()
    failed_before = request.session.testsfailed
    compose("down", "--volumes", "--remove-orphans")  # what an interrupted run left behind
    compose("config", "--quiet")
    # the profile's Prometheus and Grafana are checked, not started: their images stay unpulled
    compose("--profile", OBSERVABILITY, "config", "--quiet")
    passed = False
    try:
        started = time.monotonic()
        # every service runs the one image: building it for one builds it for all
        compose("build", SERVERS[0])
        running.timed("build", started)
        started = time.monotonic()
        compose("up", "--detach", *SERVERS, DASHBOARD.name)
        running.timed("up", started)
        started = time.monotonic()
        wait_until_healthy()
        running.timed("all healthy", started)
        yield running
        passed = request.session.testsfailed == failed_before
    finally:
        logs = [] if passed else [compose("logs", "--no-color", "--tail", "40", check=False).stdout]
        started = time.monotonic()
        compose("down", "--volumes", "--remove-orphans", check=False)
        running.timed("down", started)
        lines = [
            f"compose smoke: {phase:<12} {took:6.1f} s" for phase, took in running.timings.items()
        ]
        # past the capture, so that the timings show whether the tests pass or not
        with capture.global_and_fixture_disabled():
            print("\n".join(["", *logs, *lines]))
        label = f"label=com.docker.compose.project={PROJECT}"
        assert docker("ps", "--all", "--quiet", "--filter", label) == ""
        assert docker("volume", "ls", "--quiet", "--filter", label) == ""


def test_every_server_is_healthy_and_serves_its_api_docs_and_the_dashboard_draws_the_line(
    stack: Stack,
) -> None:
    with httpx.Client(timeout=60) as client:
        for service in LINE.services:
            assert client.get(f"{stack.url(service)}/health").json()["service"] == service.name
            docs = client.get(f"{stack.url(service)}/docs")
            assert docs.status_code == 200, service.name
            assert "swagger-ui" in docs.text
        page = client.get(DASHBOARD_URL)
        assert page.status_code == 200
        assert all(service.name in page.text.lower() for service in LINE.services)


def test_a_services_role_is_refused_by_every_other_services_database(stack: Stack) -> None:
    probe = (
        "import json, psycopg\n"
        "answers = {}\n"
        f"for database in {SERVERS!r}:\n"
        "    try:\n"
        f"        psycopg.connect('postgresql://apply:{role_password('apply')}@{POSTGRES}/'"
        " + database).close()\n"
        "        answers[database] = 'connected'\n"
        "    except psycopg.OperationalError as error:\n"
        "        answers[database] = str(error)\n"
        "print(json.dumps(answers))\n"
    )
    answers = json.loads(compose("exec", "-T", "apply", "python", "-c", probe).stdout)
    assert answers.pop("apply") == "connected"
    for database, answer in answers.items():
        assert f'permission denied for database "{database}"' in answer, answer


def test_a_built_in_scenario_passes_against_the_containers(stack: Stack, tmp_path: Path) -> None:
    started = time.monotonic()
    arguments = ["scenario", "run", SCENARIO, "--json", "--url", DASHBOARD_URL]
    arguments += ["--state-dir", str(tmp_path)]
    arguments += ["--admin-token", STACK.admin_token, "--api-token", STACK.api_token]
    run = CliRunner().invoke(app, arguments)
    stack.timed("scenario", started)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["verdict"] == "pass"


def test_the_seeding_job_seeds_the_line_once(stack: Stack) -> None:
    # last: the scenarios count every key of an edge, so they want a line holding only their own
    started = time.monotonic()
    assert "schools" in run_seed_job()
    stack.timed("seed", started)
    assert "already holds a seed: nothing seeded" in run_seed_job()
