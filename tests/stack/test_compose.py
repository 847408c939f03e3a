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

from lines.becoming_a_teacher.line import BECOMING_A_TEACHER
from lines.becoming_a_teacher.topology import LINE
from serviceline.dashboard.process import DASHBOARD
from serviceline.model.lines import load_line
from serviceline.model.topology import Topology
from serviceline.stack.compose import (
    COMPOSE_FILE,
    GRAFANA,
    GRAFANA_DASHBOARD,
    GRAFANA_DATASOURCES,
    GRAFANA_PROVIDERS,
    IMAGE,
    JAEGER,
    JAEGER_OTLP_PORT,
    LINE_MOUNT,
    OBSERVABILITY,
    POSTGRES,
    POSTGRES_INIT,
    PROMETHEUS,
    PROMETHEUS_CONFIG,
    SEED,
    StackSource,
    stack_files,
    write,
)
from serviceline.telemetry import grafana
from serviceline.testing import ROOT

JOBS = {SEED}  # one-shot containers: they run to the end, so they have no health to check
# the observability profile's, from their official images, started only when asked for
WATCHERS = {PROMETHEUS, GRAFANA, JAEGER}
BESIDE_THE_LINE = {POSTGRES, DASHBOARD.name, *JOBS, *WATCHERS}


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
    for path, text in stack_files(BECOMING_A_TEACHER, StackSource()).items():
        assert (ROOT / path).read_text(encoding="utf-8") == text, f"{path}: {hint}"


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
        if name not in {POSTGRES, *WATCHERS}:
            assert (body["image"], body["build"]) == (IMAGE, "."), name
        # nothing of the line waits for the watchers, which run only in their profile
        assert body.get("profiles") == ([OBSERVABILITY] if name in WATCHERS else None), name
        assert not WATCHERS & set(body.get("depends_on", {})) or name in WATCHERS, name
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
    written = write(tmp_path, BECOMING_A_TEACHER, StackSource())
    assert written == [
        tmp_path / path
        for path in (
            COMPOSE_FILE,
            POSTGRES_INIT,
            PROMETHEUS_CONFIG,
            GRAFANA_DATASOURCES,
            GRAFANA_PROVIDERS,
            GRAFANA_DASHBOARD,
        )
    ]
    assert yaml.safe_load(written[0].read_text(encoding="utf-8")) == stack()


def mounted(server: dict[str, Any], inside: str) -> Path:
    """The repository path a container sees at `inside`, which must be there."""
    volumes: list[str] = server["volumes"]
    [source] = [v.split(":")[0] for v in volumes if v.split(":")[1] == inside]
    path = ROOT / source
    assert path.exists(), source
    return path


def test_prometheus_scrapes_every_service_and_the_dashboard_where_compose_runs_them() -> None:
    services = stack()["services"]
    config_file = mounted(services[PROMETHEUS], "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {static["labels"]["service"]: static["targets"] for static in job["static_configs"]}
    for service in [*LINE.services, DASHBOARD]:
        assert targets.pop(service.name) == [
            f"{service.name}:{published_port(services[service.name])}"
        ]
    assert targets == {}


def test_grafana_is_given_its_prometheus_and_the_line_s_dashboard() -> None:
    server = stack()["services"][GRAFANA]
    provisioning = mounted(server, "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert source["url"] == f"http://{PROMETHEUS}:{published_port(stack()['services'][PROMETHEUS])}"
    providers = yaml.safe_load((provisioning / "dashboards/serviceline.yml").read_text())
    [provider] = providers["providers"]
    dashboards = mounted(server, provider["options"]["path"])
    board = json.loads((dashboards / "serviceline.json").read_text())
    assert board["uid"] == grafana.DASHBOARD_UID
    titles = " ".join(panel["title"] for panel in board["panels"]).lower()
    for topic in ("lag", "drift", "requests", "bytes"):
        assert topic in titles
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert panel["targets"], panel["title"]


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


def test_jaeger_receives_every_service_s_spans_when_the_profile_is_up() -> None:
    services = stack()["services"]
    jaeger = services[JAEGER]
    assert re.fullmatch(r"jaegertracing/all-in-one:\d+\.\d+\.\d+", jaeger["image"])
    assert jaeger["profiles"] == [OBSERVABILITY]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert jaeger["healthcheck"]["test"][0] == "CMD"
    # loopback only: the UI, and OTLP for a native line started with --otlp-endpoint
    assert all(port.startswith("127.0.0.1:") for port in jaeger["ports"])
    endpoint = f"${{SERVICELINE_OTLP_ENDPOINT-http://{JAEGER}:{JAEGER_OTLP_PORT}}}"
    for service in LINE.services:
        environment = services[service.name]["environment"]
        assert environment[f"{service.name.upper()}_OTLP_ENDPOINT"] == endpoint, service.name


SHOP = ROOT / "examples" / "shop" / "line.yaml"


def file_line_stack(folder: Path) -> dict[str, Any]:
    source = StackSource.of(str(SHOP), folder, ROOT)
    write(folder, load_line(str(SHOP)), source)
    loaded: dict[str, Any] = yaml.safe_load((folder / COMPOSE_FILE).read_text(encoding="utf-8"))
    return loaded


def test_a_line_file_s_stack_mounts_the_file_and_tells_every_container_where(
    tmp_path: Path,
) -> None:
    document = file_line_stack(tmp_path / "stack")
    assert mismatches(document, load_line(str(SHOP)).topology) == []
    [shared] = [v for k, v in document.items() if k.startswith("x-")]
    assert (tmp_path / "stack" / shared["build"]).resolve() == ROOT
    [volume] = shared["volumes"]
    source, inside, mode = volume.split(":")
    assert ((tmp_path / "stack" / source).resolve(), mode) == (SHOP, "ro")
    assert inside == f"{LINE_MOUNT}/line.yaml"
    told = {
        name: body.get("environment", {}).get("SERVICELINE_LINE")
        for name, body in document["services"].items()
        if name not in {POSTGRES, *WATCHERS}
    }
    assert told == dict.fromkeys(told, inside)
    assert set(told) == {
        *(s.name for s in load_line(str(SHOP)).topology.services),
        SEED,
        "dashboard",
    }


def test_a_stack_written_by_the_command_lies_beside_its_line_file(tmp_path: Path) -> None:
    line = tmp_path / "shop.yaml"
    line.write_text(SHOP.read_text(encoding="utf-8"), encoding="utf-8")
    serviceline = str(Path(sys.executable).parent / "serviceline")
    run = subprocess.run(
        [serviceline, "--line", str(line), "compose"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    document = yaml.safe_load((tmp_path / COMPOSE_FILE).read_text(encoding="utf-8"))
    [shared] = [v for k, v in document.items() if k.startswith("x-")]
    assert shared["volumes"] == [f"./shop.yaml:{LINE_MOUNT}/shop.yaml:ro"]
    assert (tmp_path / "deploy" / "postgres" / "init.sql").is_file()


def test_a_stack_without_a_dockerfile_to_build_from_is_refused(tmp_path: Path) -> None:
    serviceline = str(Path(sys.executable).parent / "serviceline")
    run = subprocess.run(
        [serviceline, "compose", "--out", str(tmp_path), "--context", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "--context: no Dockerfile" in run.stdout
    assert not (tmp_path / COMPOSE_FILE).exists()
