"""A line under its supervisor: a service that dies is started again, one that keeps dying as it
starts is given up while the rest runs on, and `serviceline stop|start|restart` drive one."""

import html
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from typer.testing import CliRunner

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.dashboard.app import create_app
from serviceline.dashboard.settings import DashboardSettings
from serviceline.stack.launcher import LineConfig, RunningLine, start_line
from serviceline.stack.supervision import EVENTS, START_RETRIES, ServiceState
from serviceline.testing import ADMIN_TOKEN, API_TOKEN

pytestmark = pytest.mark.e2e
NAMES = ["publish", "find"]
Change = tuple[str, str]
GIVE_UP: Change = ("BACKOFF", "FATAL")


@pytest.fixture
def line(tmp_path: Path, port_offset: int) -> Iterator[RunningLine]:
    config = LineConfig(
        tmp_path, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=port_offset
    )
    running = start_line(config, NAMES, restart=True, topology=LINE)
    try:
        yield running
    finally:
        running.stop()


def until(line: RunningLine, name: str, wanted: str, timeout: float = 60.0) -> ServiceState:
    """The service's state once it is `wanted`: for RUNNING, once it answers /health too."""
    deadline = time.monotonic() + timeout
    url = line.config.url(LINE.service(name))
    while time.monotonic() < deadline:
        state = line.states()[name]
        if state.state == wanted or (wanted == "RUNNING" and state.up and healthy(url)):
            return state
        time.sleep(0.2)
    raise AssertionError(f"{name} is {line.states()[name]}, not {wanted}")


def changes_until_given_up(line: RunningLine, name: str, timeout: float = 30.0) -> list[Change]:
    """The service's state changes as noted, once the give-up is among them.

    supervisord tells its event listener of a change after it answers for the new state, so the
    note of the give-up may land a moment after FATAL is seen."""
    deadline = time.monotonic() + timeout
    while True:
        rows = (line.config.state_dir / EVENTS).read_text().splitlines()
        changes = [(e["from"], e["to"]) for e in map(json.loads, rows) if e["name"] == name]
        if GIVE_UP in changes or time.monotonic() > deadline:
            return changes
        time.sleep(0.1)


def quick_deaths_before_giving_up(line: RunningLine, name: str) -> int:
    """The restarts after a quick death (BACKOFF) in a row that ended in the give-up (FATAL)."""
    changes = changes_until_given_up(line, name)
    given_up = changes.index(GIVE_UP)
    quick = 0
    for change in reversed(changes[:given_up]):
        if change == ("BACKOFF", "STARTING"):
            quick += 1
        elif change != ("STARTING", "BACKOFF"):
            break
    return quick


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def serviceline(line: RunningLine, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--state-dir", str(line.config.state_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def dashboard_status(line: RunningLine) -> str:
    """The dashboard's status region as it reads this line and its supervisor."""
    settings = DashboardSettings(
        state_dir=line.config.state_dir,
        port_offset=line.config.port_offset,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        poll_seconds=3600,
    )
    dashboard = create_app(settings)

    async def read() -> str:
        async with dashboard.router.lifespan_context(dashboard):
            await dashboard.state.board.look()
            transport = httpx.ASGITransport(app=dashboard)
            async with httpx.AsyncClient(transport=transport, base_url="http://dash") as client:
                response = await client.get("/")
                assert response.status_code == 200, response.text
                return html.unescape(response.text)

    return anyio.run(read)


def test_a_killed_service_is_restarted_and_the_rest_runs_on(line: RunningLine) -> None:
    before = line.states()
    os.kill(before["find"].pid, signal.SIGKILL)

    after = until(line, "find", "RUNNING")
    assert after.pid != before["find"].pid
    assert after.restarts == 1
    assert after.last_restart_at is not None
    assert line.states()["publish"].pid == before["publish"].pid
    assert line.states()["publish"].restarts == 0
    log = (line.config.state_dir / "logs" / "supervision.log").read_text()
    assert "find died" in log
    assert "find: restarted after dying 1 time" in dashboard_status(line)


def test_stop_start_and_restart_one_service_from_the_command_line(line: RunningLine) -> None:
    assert "stopped find" in serviceline(line, "stop", "find")
    assert line.states()["find"].state == "STOPPED"
    assert set(line.urls()) == {"publish"}
    assert "find: down (stopped)" in dashboard_status(line)

    assert "started find" in serviceline(line, "start", "find")
    started = until(line, "find", "RUNNING")
    assert "restarted find" in serviceline(line, "restart", "find")
    restarted = until(line, "find", "RUNNING")
    assert restarted.pid != started.pid
    # asked for, not after a death
    assert restarted.restarts == 0

    refused = CliRunner().invoke(app, ["start", "apply", "--state-dir", str(line.config.state_dir)])
    assert refused.exit_code == 1
    assert "the line runs no apply" in refused.output


def test_a_service_that_keeps_dying_as_it_starts_is_given_up_alone(line: RunningLine) -> None:
    serviceline(line, "stop", "find")
    port = line.config.port(LINE.service("find"))
    with socket.socket() as squatter:
        # something else holds find's port: each start dies at once, unable to listen
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((line.config.host, port))
        squatter.listen()
        line.supervisor.start("find")
        given_up = until(line, "find", "FATAL")
        assert given_up.given_up
        # on a loaded machine a start may take longer than START_SECONDS to die: that death is
        # not a quick one, and the count of quick deaths in a row begins again after it
        assert quick_deaths_before_giving_up(line, "find") == START_RETRIES
        given_up = line.states()["find"]
        assert given_up.restarts >= START_RETRIES
        assert line.states()["publish"].state == "RUNNING"
        assert healthy(line.config.url(LINE.service("publish")))
        assert "find: given up" in dashboard_status(line)

    serviceline(line, "start", "find")
    assert until(line, "find", "RUNNING").restarts == given_up.restarts
