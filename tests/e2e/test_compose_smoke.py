"""The line in containers: docker-compose builds the one image and runs every service on
PostgreSQL, a database and role each, and the dashboard; a built-in scenario passes against the
containers, and the seeding job seeds the line once. Runs with --compose (make compose-smoke);
the stack is always removed, containers, network and volume.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.stack.compose import COMPOSE_FILE, POSTGRES, role_password, stack_config
from serviceline.testing import ROOT
from tests.e2e.compose_stack import ComposeStack, running

pytestmark = [pytest.mark.e2e, pytest.mark.compose, pytest.mark.timeout(1800)]

# quick (30 simulated minutes, Publish and Apply): a copy over HTTP between containers, deletes
# included, and a copy kept for the application that still refers to it
SCENARIO = "site-removed"
SERVERS = [service.name for service in LINE.services]
STACK = stack_config(LINE)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[ComposeStack]:
    with running(
        ComposeStack("servicelinesmoke", ROOT / COMPOSE_FILE, LINE.services), request
    ) as up:
        yield up


def test_every_server_is_healthy_and_serves_its_api_docs_and_the_dashboard_draws_the_line(
    stack: ComposeStack,
) -> None:
    with httpx.Client(timeout=60) as client:
        for service in LINE.services:
            assert client.get(f"{stack.url(service)}/health").json()["service"] == service.name
            docs = client.get(f"{stack.url(service)}/docs")
            assert docs.status_code == 200, service.name
            assert "swagger-ui" in docs.text
        page = client.get(stack.dashboard_url)
        assert page.status_code == 200
        assert all(service.name in page.text.lower() for service in LINE.services)


def test_a_services_role_is_refused_by_every_other_services_database(stack: ComposeStack) -> None:
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
    answers = json.loads(stack.compose("exec", "-T", "apply", "python", "-c", probe).stdout)
    assert answers.pop("apply") == "connected"
    for database, answer in answers.items():
        assert f'permission denied for database "{database}"' in answer, answer


def test_a_built_in_scenario_passes_against_the_containers(
    stack: ComposeStack, tmp_path: Path
) -> None:
    started = time.monotonic()
    arguments = ["scenario", "run", SCENARIO, "--json", "--url", stack.dashboard_url]
    arguments += ["--state-dir", str(tmp_path)]
    arguments += ["--admin-token", STACK.admin_token, "--api-token", STACK.api_token]
    run = CliRunner().invoke(app, arguments)
    stack.timed("scenario", started)
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["verdict"] == "pass"


def test_the_seeding_job_seeds_the_line_once(stack: ComposeStack) -> None:
    # last: the scenarios count every key of an edge, so they want a line holding only their own
    started = time.monotonic()
    assert "schools" in stack.run_seed_job()
    stack.timed("seed", started)
    assert "already holds a seed: nothing seeded" in stack.run_seed_job()
