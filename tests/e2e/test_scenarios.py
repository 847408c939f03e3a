"""Every built-in scenario on a line of its own: real processes, real HTTP, the simulated clock."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.dashboard.process import DASHBOARD
from serviceline.scenarios.recording import Result
from serviceline.scenarios.runner import Options, run_scenario
from serviceline.scenarios.spec import builtin_names, load, load_file
from serviceline.stack.launcher import LineConfig, free_port_offset, start_line
from serviceline.testing import ADMIN_TOKEN, API_TOKEN

pytestmark = pytest.mark.e2e
NAMES = builtin_names()
SEEDED = """
title: a seeded line starts in sync and carries on
seed: {size: small, seed: 3}
watch: [publish.course.find, publish.course.apply, gias.school.publish]
steps:
  - expect:
      converged: [publish.course.find, publish.course.apply, gias.school.publish]
  - advance: 1h
  - expect:
      converged: [publish.course.find, publish.course.apply, gias.school.publish]
      drift: {publish.course.find: {in_sync: 150}}
"""


def options(state_dir: Path, **more: Any) -> Options:
    return Options(
        state_dir=state_dir,
        port_offset=free_port_offset(),
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        **more,
    )


def without_timing(result: Result) -> dict[str, Any]:
    body = result.to_json()
    del body["elapsed_seconds"]
    return body


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_the_built_in_scenario_passes(name: str, tmp_path: Path) -> None:
    result = await run_scenario(load(name), options(tmp_path))
    assert result.passed, "\n".join(result.failures)
    last = json.loads((tmp_path / "scenarios" / "last.json").read_text(encoding="utf-8"))
    assert (last["scenario"], last["verdict"], last["failures"]) == (name, "pass", [])
    assert last["timeline"][0]["step"] == "start"
    for entry in last["timeline"]:
        assert set(entry) >= {"at", "step", "changed", "drift", "ok"}
        assert all(set(counts) >= {"in_sync", "stale"} for counts in entry["drift"].values())


@pytest.mark.anyio
async def test_a_scenario_plays_out_the_same_way_every_time(tmp_path: Path) -> None:
    scenario = load("publish-outage")
    first = await run_scenario(scenario, options(tmp_path / "one"))
    second = await run_scenario(scenario, options(tmp_path / "two"))
    assert first.passed, "\n".join(first.failures)
    assert without_timing(first) == without_timing(second)


@pytest.mark.anyio
async def test_an_override_changes_what_the_scenario_finds(tmp_path: Path) -> None:
    """Apply listing every course at each read sees the deletion that updated_since misses."""
    overrides = {"publish.course.apply": "snapshot@10m"}
    result = await run_scenario(
        load("course-withdrawn-or-deleted"),
        options(tmp_path, overrides=overrides),
    )
    assert result.verdict == "fail"
    assert result.overrides == overrides
    assert any(
        "publish.course.apply orphaned: expected 1, found 0" in failure
        for failure in result.failures
    ), result.failures
    last = json.loads((tmp_path / "scenarios" / "last.json").read_text(encoding="utf-8"))
    assert last["overrides"] == overrides


def test_compare_shows_find_reading_publish_live_fails_while_publish_is_down(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "--port-offset",
            str(free_port_offset()),
            "scenario",
            "compare",
            "publish-outage",
            "--setting",
            "find.read_through=true",
            "--json",
            "--state-dir",
            str(tmp_path),
            "--admin-token",
            ADMIN_TOKEN,
            "--api-token",
            API_TOKEN,
        ],
    )
    assert result.exit_code == 0, result.output
    compared = json.loads(result.stdout)
    baseline, what_if = compared["baseline"], compared["what_if"]
    assert (baseline["verdict"], what_if["verdict"]) == ("pass", "fail")
    assert what_if["settings"]["find"]["read_through"] == "true"
    assert any(
        "find /courses courses.0.name: expected status 200, found 503" in failure
        for failure in what_if["failures"]
    ), what_if["failures"]
    # no copy, so no drift to audit: the edge is gone from the line
    assert all("publish.course.find" not in entry["drift"] for entry in what_if["timeline"])
    reasons = {entry["unaudited"].get("publish.course.find") for entry in what_if["timeline"]}
    assert reasons == {"find keeps no copy: it reads publish live"}


def serviceline(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, [*args, "--admin-token", ADMIN_TOKEN, "--api-token", API_TOKEN]
    )
    return result.exit_code, result.output


def test_a_seeded_scenario_runs_on_the_whole_line_seeded(tmp_path: Path) -> None:
    story = tmp_path / "seeded.yaml"
    story.write_text(SEEDED, encoding="utf-8")
    assert len(load_file(story).needed()) == 10
    code, shown = serviceline(
        "--port-offset",
        str(free_port_offset()),
        "scenario",
        "run",
        str(story),
        "--seed",
        "4",
        "--state-dir",
        str(tmp_path),
    )
    assert code == 0, shown
    assert "seed small (seed 4)" in shown
    last = json.loads((tmp_path / "scenarios" / "last.json").read_text(encoding="utf-8"))
    assert (last["verdict"], last["seed"]) == ("pass", 4)


def test_a_scenario_runs_on_a_line_already_running(tmp_path: Path) -> None:
    config = LineConfig(
        tmp_path / "line",
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        port_offset=free_port_offset(),
    )
    line = start_line(config, ["publish", "manage"], topology=LINE)
    try:
        # the address `serviceline up` prints: its dashboard's, 8100 + the port offset
        url = f"http://127.0.0.1:{DASHBOARD.port + config.port_offset}"
        args = ("scenario", "run", "partnership-conflict", "--state-dir", str(tmp_path))
        code, shown = serviceline(*args, "--url", url)
        assert code == 0, shown
        code, shown = serviceline(*args, "--url", url, "--override", "*=feed@1m")
        assert code == 2
        assert "need the scenario's own line" in " ".join(shown.split())
        code, shown = serviceline("scenario", "run", "site-removed", "--url", url)
        assert code == 2
        assert "apply does not answer" in " ".join(shown.split())
    finally:
        line.stop()
