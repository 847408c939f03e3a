"""Every operation of every service, fuzzed from its own OpenAPI over real HTTP (schemathesis).

Valid and invalid requests alike, with a fixed seed and a bounded number of each: no answer may
be a 5xx, and every answer must be one the service's OpenAPI documents, in the shape it gives.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lines.becoming_a_teacher.topology import LINE
from serviceline.stack.launcher import LineConfig, RunningLine, free_port_offset, start_line
from serviceline.testing import ADMIN, ADMIN_TOKEN, API, API_TOKEN, ROOT

pytestmark = pytest.mark.e2e
SERVICES = [service.name for service in LINE.services]
# cases per operation, valid and invalid mixed: about six thousand requests in all
EXAMPLES = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# a fault can kill the process that serves it (die_mid_batch): the line would stop under test
LEFT_OUT = {"/admin/faults": "a fault may kill the service under test"}
REPORT = ROOT / "test-output" / "fuzz.json"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningLine]:
    config = LineConfig(
        tmp_path_factory.mktemp("fuzzed"),
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        port_offset=free_port_offset(),
    )
    running = start_line(config, SERVICES, topology=LINE)
    try:
        yield running
    finally:
        running.stop()


def credential(path: str) -> dict[str, str]:
    """What a well-behaved caller presents: the admin token to /admin, the operator's elsewhere."""
    return ADMIN if path.startswith("/admin") else API


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_its_openapi_says(line: RunningLine, service: str) -> None:
    url = line.urls()[service]
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    cases: dict[str, int] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"{service}'s OpenAPI has an operation unread: {result}"
        operation = result.ok()
        if not any(operation.path.startswith(prefix) for prefix in LEFT_OUT):
            cases[f"{operation.method.upper()} {operation.path}"] = fuzz(operation, url)
    assert cases, f"{service} serves no operation to fuzz"
    record(service, cases)


def fuzz(operation: Any, url: str) -> int:
    """Run one operation's cases; how many there were."""
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    ran = 0

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Any) -> None:
        nonlocal ran
        ran += 1
        headers = credential(case.path)
        response = case.call(base_url=url, headers=headers, timeout=60)
        case.validate_response(response, checks=CHECKS, headers=headers)

    answers_as_documented()
    return ran


def record(service: str, cases: dict[str, int]) -> None:
    """Keep how many cases each operation got, for the run's figures."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    found: dict[str, Any] = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    found[service] = {"operations": len(cases), "cases": sum(cases.values()), "by_operation": cases}
    REPORT.write_text(json.dumps(found, indent=2, sort_keys=True))
