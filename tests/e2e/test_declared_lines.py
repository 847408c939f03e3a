"""The example YAML lines run by the `serviceline` command: real processes, real HTTP."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from serviceline.dashboard.process import DASHBOARD
from serviceline.declared.spec import read_spec
from serviceline.stack.launcher import free_port_offset
from serviceline.testing import ADMIN_TOKEN, API, API_TOKEN, ROOT

pytestmark = pytest.mark.e2e
EXAMPLES = Path(ROOT) / "examples"
SERVICELINE = str(Path(sys.executable).parent / "serviceline")
SCENARIOS = sorted(
    path
    for path in EXAMPLES.glob("*/*.yaml")
    if path.name != "line.yaml" and "steps:" in path.read_text(encoding="utf-8")
)


def serviceline(line: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`serviceline --line LINE ARGS` in a process of its own, on ports no one else holds."""
    ports = [DASHBOARD.port, *(service.port for service in read_spec(line).services)]
    offset = free_port_offset(ports=ports)
    return subprocess.run(
        [SERVICELINE, "--line", str(line), "--port-offset", str(offset), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_example_lines_scenario_passes(scenario: Path, tmp_path: Path) -> None:
    ran = serviceline(
        scenario.parent / "line.yaml",
        "scenario",
        "run",
        str(scenario),
        "--json",
        "--state-dir",
        str(tmp_path),
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    assert result["verdict"] == "pass", result["failures"]


def test_a_declared_line_starts_seeds_copies_drifts_and_stops(tmp_path: Path) -> None:
    line = EXAMPLES / "hospital" / "line.yaml"
    ports = [DASHBOARD.port, *(service.port for service in read_spec(line).services)]
    offset = str(free_port_offset(ports=ports))
    common = ["--line", str(line), "--port-offset", offset]
    tokens = ["--admin-token", ADMIN_TOKEN]
    state = ["--state-dir", str(tmp_path)]
    with subprocess.Popen(
        [SERVICELINE, *common, "up", *state, *tokens, "--api-token", API_TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    ) as up:
        try:
            _use_the_running_line(up, common, [*state, *tokens], int(offset))
        finally:
            subprocess.run([SERVICELINE, *common, "down", *state], capture_output=True, check=False)
            up.wait(timeout=60)
    assert up.returncode == 0


def _use_the_running_line(
    up: "subprocess.Popen[str]", common: list[str], options: list[str], offset: int
) -> None:
    assert up.stdout is not None
    shown = ""
    while "Ctrl-C" not in shown:
        text = up.stdout.readline()
        assert text, shown
        shown += text
    assert "the 'District hospital' line" in shown
    assert "50 patients" in shown

    def drift(*edges: str) -> dict[str, dict[str, int]]:
        audit = [SERVICELINE, *common, "drift", *edges, "--json", *options]
        shown = subprocess.run(audit, capture_output=True, text=True, check=True).stdout
        return {e["edge"]: e["counts"] for e in json.loads(shown)["edges"]}

    consumers = ("emergency", "radiology", "laboratory", "pharmacy")
    edges = drift()
    assert set(edges) == {f"pas.patient.{consumer}" for consumer in consumers}
    assert all(counts["in_sync"] > 0 for counts in edges.values()), edges
    pas = f"http://127.0.0.1:{8400 + offset}"
    patient = httpx.get(f"{pas}/patients", headers=API).json()[0]["nhs_number"]
    moved = httpx.patch(f"{pas}/patients/{patient}", json={"family_name": "Moved"}, headers=API)
    assert moved.status_code == 200, moved.text
    assert drift("pas.patient.radiology")["pas.patient.radiology"]["stale"] == 1
    dashboard = httpx.get(f"http://127.0.0.1:{DASHBOARD.port + offset}/")
    assert "District hospital" in dashboard.text


def test_a_study_compares_two_mechanisms_on_a_declared_line(tmp_path: Path) -> None:
    study = EXAMPLES / "shop" / "feed-or-poll.yaml"
    ran = serviceline(
        EXAMPLES / "shop" / "line.yaml",
        "study",
        "compare",
        str(study),
        "--span",
        "1d",
        "--json",
        "--state-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    compared = json.loads(ran.stdout)
    arms = {arm["name"]: arm for arm in compared["arms"]}
    assert arms["feed"]["changed"] == ["catalogue.product.orders"]
    assert arms["updated-since"]["changed"] == []
    orders = compared["edges"]["catalogue.product.orders"]
    # the same workload under both: the changes are the same, only their delivery differs
    assert orders["feed"]["changes"] == orders["updated-since"]["changes"]
    # a deleted product never reaches the orders by updated_since; a feed carries the delete
    assert orders["updated-since"]["never_delivered"] > 0
    assert orders["feed"]["never_delivered"] == 0
    assert (tmp_path / "out" / "compare.html").is_file()
