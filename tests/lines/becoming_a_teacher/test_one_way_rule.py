"""The one-way rule: services write to each other only along the real command paths."""

from pathlib import Path

import pytest

from lines.becoming_a_teacher.line import BECOMING_A_TEACHER
from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.topology import LINE, RECORD_SYSTEMS
from serviceline.model.credentials import (
    ADMIN,
    AUDITOR,
    OPERATOR,
    Credentials,
    Principal,
    presented,
)
from serviceline.model.lines import Size
from serviceline.runtime.deps import COMMAND_API, OWN_API
from serviceline.runtime.settings import ServiceSettings
from serviceline.testing import API, API_TOKEN, Call, in_process_line, names_field

COMMANDS = {(c.caller, c.target) for c in LINE.commands}
RECORD_SYSTEM_WRITES = {(system, "apply") for system in RECORD_SYSTEMS}
# reads whose query goes in a POST body: TRS's find of persons by TRN and date of birth
QUERIES = {("dqt", "/v3/persons/find")}


def reads(call: Call) -> bool:
    return call.method == "GET" or (call.target, call.path) in QUERIES


SERVICES = [s.name for s in LINE.services]


def default_settings(service: str) -> ServiceSettings:
    return BECOMING_A_TEACHER.service(service).settings()


def accepted(service: str) -> Credentials:
    """The credentials `service` accepts, as its app derives them from its default settings."""
    return Credentials.derive(service, LINE, default_settings(service))


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_holds_credentials_only_for_its_command_paths(service: str) -> None:
    tokens = default_settings(service).upstream_tokens
    for target in (name for name in SERVICES if name != service):
        credentials = accepted(target)
        holder = credentials.identify(presented(service, target, tokens))
        if holder is None:
            continue  # its token for `target` opens nothing there
        assert holder == service, f"{service}'s token for {target} is {holder}'s"
        commands = credentials.allows(Principal(holder), COMMAND_API, writes=True)
        assert commands == ((service, target) in COMMANDS), f"{service} commands {target}"
        assert not credentials.allows(Principal(holder), OWN_API, writes=True), (
            f"{service} can write to {target}'s own API"
        )


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_accepts_other_services_only_along_command_paths(service: str) -> None:
    credentials = accepted(service)
    callers = {caller for caller, target in COMMANDS if target == service}
    assert credentials.commands == callers
    clients = set(credentials.tokens.values()) - {ADMIN, OPERATOR, AUDITOR}
    consumers = {e.consumer for e in LINE.edges_from(service)}
    assert clients == consumers | callers, f"{service} accepts {clients - consumers - callers}"
    for client in clients - callers:
        assert not credentials.allows(Principal(client), COMMAND_API, writes=True)


@pytest.mark.anyio
async def test_the_only_writes_between_services_are_the_command_paths(state_dir: Path) -> None:
    async with in_process_line(SERVICES, state_dir) as line:
        await seed_line(line.clients, line.control, API_TOKEN, Size.SMALL, seed=5)
        await line.control.advance(by="2d")  # TRNs issued, record systems decide

        writes = {(c.caller, c.target) for c in line.calls if not reads(c)}
        assert writes, "the line made no writes at all: the test would prove nothing"
        assert writes <= COMMANDS, f"writes outside the command paths: {writes - COMMANDS}"
        assert ("register", "dqt") in writes
        assert ("manage", "apply") in writes
        assert writes & RECORD_SYSTEM_WRITES

        read = {(c.caller, c.target) for c in line.calls if reads(c)}
        assert ("placements", "dqt") in read - writes
        copies = {(e.consumer, e.owner) for e in LINE.edges}
        allowed = copies | COMMANDS
        assert read <= allowed, f"reads with no edge or command behind them: {read - allowed}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", "/copies/course/any"), ("PUT", "/copies/course/any"), ("POST", "/copies/site")],
)
@pytest.mark.parametrize(
    ("content", "headers"),
    [
        ("{}", {"content-type": "application/json"}),
        ("{}", {}),  # curl -d without a content type: a form body
        ("not json", {"content-type": "application/json"}),
        ('{"name": NaN}', {"content-type": "application/json"}),
    ],
)
async def test_a_write_to_a_copy_is_refused_naming_the_owner_before_its_body_is_read(
    state_dir: Path, method: str, path: str, content: str, headers: dict[str, str]
) -> None:
    async with in_process_line(["apply"], state_dir) as line:
        answer = await line["apply"].request(method, path, content=content, headers=headers)
        assert answer.status_code == 403, answer.text
        assert "owned by publish" in answer.json()["detail"]


@pytest.mark.anyio
async def test_an_editable_copy_reads_its_body_and_refuses_one_that_is_no_object(
    state_dir: Path,
) -> None:
    async with in_process_line(["placements"], state_dir) as line:
        for content in ("[]", "not json", '{"email": NaN}'):
            answer = await line["placements"].patch(
                "/copies/school/100000", content=content, headers=API
            )
            assert answer.status_code == 422, answer.text
            assert names_field(answer, "body"), answer.text
