"""A line written as YAML in containers: `serviceline compose` writes its stack beside the file,
the stack builds from the repository and mounts the file, every service and the dashboard come
up healthy on PostgreSQL, the example's scenario passes against the containers, and the seeding
job seeds it once. Runs with --compose (make compose-smoke); the stack is always removed.
"""

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serviceline.declared.spec import read_spec
from serviceline.model.lines import load_line
from serviceline.stack.compose import COMPOSE_FILE, stack_config
from serviceline.testing import ROOT
from tests.e2e.compose_stack import ComposeStack, running

pytestmark = [pytest.mark.e2e, pytest.mark.compose, pytest.mark.timeout(1800)]

EXAMPLE = ROOT / "examples" / "shop"
SERVICELINE = str(Path(sys.executable).parent / "serviceline")


def serviceline(line: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # a process of its own: --line names the line for the whole process
    return subprocess.run(
        [SERVICELINE, "--line", str(line), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def line_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop-stack")
    shutil.copy(EXAMPLE / "line.yaml", folder / "shop.yaml")
    return folder / "shop.yaml"


@pytest.fixture(scope="module")
def stack(line_file: Path, request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    written = serviceline(line_file, "compose")
    assert written.returncode == 0, written.stdout + written.stderr
    servers = load_line(str(line_file)).topology.services
    with running(
        ComposeStack("servicelineshop", line_file.parent / COMPOSE_FILE, servers), request
    ) as up:
        yield up


def test_every_service_of_the_file_is_healthy_and_the_dashboard_draws_it(
    stack: ComposeStack, line_file: Path
) -> None:
    with httpx.Client(timeout=60) as client:
        for service in stack.servers:
            assert client.get(f"{stack.url(service)}/health").json()["service"] == service.name
        page = client.get(stack.dashboard_url)
        assert page.status_code == 200
        assert read_spec(line_file).title in page.text


def test_the_example_scenario_passes_against_the_containers(
    stack: ComposeStack, line_file: Path, tmp_path: Path
) -> None:
    tokens = stack_config(load_line(str(line_file)).topology)
    ran = serviceline(
        line_file,
        "scenario",
        "run",
        str(EXAMPLE / "price-change.yaml"),
        "--json",
        "--url",
        stack.dashboard_url,
        "--state-dir",
        str(tmp_path),
        "--admin-token",
        tokens.admin_token,
        "--api-token",
        tokens.api_token,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    assert result["verdict"] == "pass", result["failures"]


def test_the_seeding_job_seeds_the_line_once(stack: ComposeStack) -> None:
    # last: the scenario counts every key of an edge, so it wants a line holding only its own
    assert "products" in stack.run_seed_job()
    assert "already holds a seed: nothing seeded" in stack.run_seed_job()
