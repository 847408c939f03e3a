"""docker-compose.yml against the topology: every service, port and dependency, both ways."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url

from serviceline.compose import (
    COMPOSE_FILE,
    IMAGE,
    POSTGRES,
    POSTGRES_INIT,
    SEED,
    compose_file,
    postgres_init,
    write,
)
from serviceline.dashboard.process import DASHBOARD
from serviceline.testing import ROOT
from serviceline.topology import LINE, Topology

JOBS = {SEED}  # one-shot containers: they run to the end, so they have no health to check
BESIDE_THE_LINE = {POSTGRES, DASHBOARD.name, *JOBS}


def stack() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / COMPOSE_FILE).read_text(encoding="utf-8"))
    return loaded


def published_port(server: dict[str, Any]) -> int:
    """The container port a server publishes (the host side may be moved by a variable)."""
    [mapping] = server["ports"]
    return int(mapping.rsplit(":", 1)[1])


def mismatches(document: dict[str, Any], topology: Topology) -> list[str]:
    """Where the compose file and the topology disagree on services, ports or dependencies."""
    found: list[str] = []
    services = document["services"]
    servers = {name: body for name, body in services.items() if name not in BESIDE_THE_LINE}
    declared = {service.name for service in topology.services}
    found += [
        f"{name}: in compose, not in the topology" for name in sorted(servers.keys() - declared)
    ]
    for service in topology.services:
        server = servers.get(service.name)
        if server is None:
            found.append(f"{service.name}: in the topology, not in compose")
            continue
        if published_port(server) != service.port:
            found.append(f"{service.name}: port {published_port(server)}, not {service.port}")
        wanted = {POSTGRES, *topology.upstreams(service.name)}
        have = set(server.get("depends_on", {}))
        found += [f"{service.name}: does not wait for {name}" for name in sorted(wanted - have)]
        found += [f"{service.name}: waits for {name} needlessly" for name in sorted(have - wanted)]
    return found


def test_the_committed_files_are_the_ones_the_topology_gives() -> None:
    hint = "run `make compose` to write them again from the topology"
    assert (ROOT / COMPOSE_FILE).read_text(encoding="utf-8") == compose_file(), hint
    assert (ROOT / POSTGRES_INIT).read_text(encoding="utf-8") == postgres_init(), hint


def test_compose_and_the_topology_agree() -> None:
    assert mismatches(stack(), LINE) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda doc: doc["services"].pop("find"), "find: in the topology, not in compose"),
        (
            lambda doc: doc["services"].update(ucas={"ports": ["8199:8199"]}),
            "ucas: in compose, not in the topology",
        ),
        (
            lambda doc: doc["services"]["apply"].update(ports=["8199:8199"]),
            "apply: port 8199, not 8104",
        ),
        (
            lambda doc: doc["services"]["manage"]["depends_on"].pop("apply"),
            "manage: does not wait for apply",
        ),
        (
            lambda doc: doc["services"]["gias"]["depends_on"].update(dqt={}),
            "gias: waits for dqt needlessly",
        ),
    ],
)
def test_a_service_port_or_dependency_missing_on_one_side_is_named(
    change: Any, expected: str
) -> None:
    document = copy.deepcopy(stack())
    change(document)
    assert mismatches(document, LINE) == [expected]


def test_every_server_is_the_one_image_checked_for_health_after_what_it_needs() -> None:
    document = stack()
    assert "version" not in document
    assert [key for key in document if key.startswith("x-")] == ["x-serviceline"]
    for name, body in document["services"].items():
        if name in JOBS:
            assert "healthcheck" not in body
        else:
            assert body["healthcheck"]["test"][0] == "CMD", name
        if name != POSTGRES:
            assert (body["image"], body["build"]) == (IMAGE, "."), name
        for needed, condition in body.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {needed}"
    line = {service.name for service in LINE.services}
    assert set(document["services"][SEED]["depends_on"]) == line
    assert set(document["services"][DASHBOARD.name]["depends_on"]) == line
    assert published_port(document["services"][DASHBOARD.name]) == DASHBOARD.port


def test_each_service_reads_its_own_database_as_its_own_role_and_its_upstreams_by_name() -> None:
    services = stack()["services"]
    for service in LINE.services:
        environment = services[service.name]["environment"]
        prefix = f"{service.name.upper()}_"
        url = make_url(environment[f"{prefix}DATABASE_URL"])
        assert (url.username, url.database, url.host) == (service.name, service.name, POSTGRES)
        upstreams = json.loads(environment[f"{prefix}UPSTREAMS"])
        assert upstreams == {
            name: f"http://{name}:{LINE.service(name).port}"
            for name in LINE.upstreams(service.name)
        }
        assert environment[f"{prefix}HOST"] == "0.0.0.0"


def test_postgres_gives_each_role_its_own_database_and_no_one_else_connects() -> None:
    sql = (ROOT / POSTGRES_INIT).read_text(encoding="utf-8")
    statements = [line for line in sql.splitlines() if line and not line.startswith("--")]
    roles = re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']+)';", sql)
    environment = {
        name: make_url(body["environment"][f"{name.upper()}_DATABASE_URL"])
        for name, body in stack()["services"].items()
        if name not in BESIDE_THE_LINE
    }
    assert roles == [(name, url.password) for name, url in environment.items()]
    for service in LINE.services:
        assert f"CREATE DATABASE {service.name} OWNER {service.name};" in statements
        assert f"REVOKE ALL ON DATABASE {service.name} FROM PUBLIC;" in statements
    assert len(statements) == 3 * len(LINE.services)


def test_the_stack_is_written_where_compose_reads_it(tmp_path: Path) -> None:
    written = write(tmp_path)
    assert written == [tmp_path / COMPOSE_FILE, tmp_path / POSTGRES_INIT]
    assert yaml.safe_load(written[0].read_text(encoding="utf-8")) == stack()


@pytest.mark.parametrize(
    ("asked", "exit_code", "reported"),
    [
        ([], pytest.ExitCode.NO_TESTS_COLLECTED, "4 deselected"),
        (["--compose"], pytest.ExitCode.OK, "4 tests collected"),
    ],
)
def test_the_compose_smoke_test_runs_only_when_asked_for(
    asked: list[str], exit_code: int, reported: str
) -> None:
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [*collect, *asked, "tests/e2e/test_compose_smoke.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == exit_code, run.stdout + run.stderr
    assert reported in run.stdout
