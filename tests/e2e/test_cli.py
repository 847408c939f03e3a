"""The `serviceline` command against a running line: clock, sync and the drift auditor."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.stack.launcher import LineConfig, RunningLine, free_port_offset, start_line
from serviceline.testing import ADMIN_TOKEN, API, API_TOKEN
from tests import builders

pytestmark = pytest.mark.e2e
NAMES = ["publish", "find", "apply"]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[RunningLine]:
    config = LineConfig(
        tmp_path, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=free_port_offset()
    )
    running = start_line(config, NAMES, topology=LINE)
    try:
        yield running
    finally:
        running.stop()


def command_line(line: RunningLine) -> Callable[..., tuple[int, str]]:
    """`serviceline ARGS` against the line under test: its exit code and what it printed."""

    def serviceline(*args: str) -> tuple[int, str]:
        offset = ["--port-offset", str(line.config.port_offset)]
        result = CliRunner().invoke(app, [*offset, *args, "--admin-token", ADMIN_TOKEN])
        return result.exit_code, result.output

    return serviceline


def test_clock_sync_and_drift_from_the_command_line(line: RunningLine, tmp_path: Path) -> None:
    serviceline = command_line(line)
    publish = line.urls()["publish"]
    with httpx.Client() as client:
        client.post(f"{publish}/providers", json=builders.provider(), headers=API)
        client.post(f"{publish}/providers/2FR/sites", json=builders.site(), headers=API)
        course = client.post(
            f"{publish}/providers/2FR/courses", json=builders.course(), headers=API
        ).json()

        code, shown = serviceline("clock", "show")
        assert code == 0, shown
        assert "2026-10-05" in shown

        history = ("--state-dir", str(tmp_path / "audits"))
        code, report = serviceline("drift", "publish.course.apply", "--json", *history)
        assert code == 0, report
        counts = json.loads(report)["edges"][0]["counts"]
        assert counts["missing"] == 1  # before the first sync

        code, moved = serviceline("clock", "advance", "10m")
        assert code == 0, moved
        assert "publish.course.apply" in moved

        client.patch(f"{publish}/courses/{course['uuid']}", json={"name": "Art"}, headers=API)
        page = tmp_path / "drift.html"
        code, refused = serviceline(
            "drift", "publish.course.apply", "--fail-on", "stale=0", "--html", str(page), *history
        )
        assert code == 1, refused
        assert "stale" in refused
        assert "Art" in page.read_text(encoding="utf-8")

        code, synced = serviceline("sync", "publish.course.apply")
        assert code == 0, synced
        code, report = serviceline(
            "drift", "publish.course.apply", "--fail-on", "stale=0", *history
        )
        assert code == 0, report

        code, sampled = serviceline(
            "drift", "publish.course.find", "--every", "5m", "--for", "10m", *history
        )
        assert code == 0, sampled
        samples = [
            json.loads(line)
            for line in (tmp_path / "audits" / "drift-history.jsonl").read_text().splitlines()
        ]
        find = [s["at"] for s in samples if "publish.course.find" in s["edges"]]
        assert len(find) == 3 == len(set(find))  # now, 5 and 10 minutes on
        code, shown = serviceline("drift", "--history", *history)
        assert code == 0, shown
        assert "drift history" in shown

        code, wrong = serviceline("clock", "advance", "ten minutes")
        assert code == 1
        assert "duration" in wrong


def test_a_course_change_traced_from_the_command_line(line: RunningLine) -> None:
    serviceline = command_line(line)
    publish = line.urls()["publish"]
    with httpx.Client() as client:
        client.post(f"{publish}/providers", json=builders.provider(), headers=API)
        client.post(f"{publish}/providers/2FR/sites", json=builders.site(), headers=API)
        made = client.post(f"{publish}/providers/2FR/courses", json=builders.course(), headers=API)
        uuid = made.json()["uuid"]
        assert serviceline("clock", "advance", "7m")[0] == 0
        renamed = {"name": "Fine Art"}
        assert client.patch(f"{publish}/courses/{uuid}", json=renamed, headers=API).is_success
    assert serviceline("clock", "advance", "23m")[0] == 0

    code, shown = serviceline("trace", "course", uuid)
    assert code == 0, shown
    assert f"course {uuid}, traced at Mon 05 Oct 00:30 (simulated)" in shown
    assert "publish wrote version 2 (upsert) at Mon 05 Oct 00:07" in shown
    assert "the Mon 05 Oct 00:10 run (feed, cron */5 * * * *)" in shown
    assert "apply: never saw version 1" in shown
    assert "register: not running: its copy is not traced" in shown

    code, printed = serviceline("trace", "course", uuid, "--json")
    assert code == 0, printed
    hops = {hop["edge"]: hop for hop in json.loads(printed)["hops"]}
    assert [(v["version"], v["outcome"]) for v in hops["publish.course.apply"]["versions"]] == [
        (1, "superseded"),
        (2, "delivered"),
    ]
    assert hops["publish.course.find"]["held"][-1]["version"] == 2

    code, refused = serviceline("trace", "courses", uuid)
    assert code == 1
    assert "entity: no entity 'courses'" in refused
    code, unknown = serviceline("trace", "course", "no-such-key")
    assert code == 1
    assert "key: publish logged no change of course 'no-such-key'" in unknown
