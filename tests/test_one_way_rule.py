"""The one-way rule: services write to each other only along the real command paths."""

from pathlib import Path

import pytest

from serviceline.control import settings_class
from serviceline.seed import Size, seed_line
from serviceline.testing import API_TOKEN, in_process_line
from serviceline.topology import LINE, RECORD_SYSTEMS, Reader

COMMANDS = {(c.caller, c.target) for c in LINE.commands}
RECORD_SYSTEM_WRITES = {(system, "apply") for system in RECORD_SYSTEMS}


# owners whose read API itself needs a token: a credential for reading, not for writing
READ_WITH_TOKEN = {
    (e.consumer, e.owner)
    for e in LINE.edges
    if e.reader in (Reader.APPLY_REGISTER_API, Reader.APPLY_VENDOR_API)
}


def write_tokens(service: str) -> set[str]:
    """Every token the service's write APIs accept."""
    settings = settings_class(service)()
    vendors = getattr(settings, "vendor_tokens", {})
    return {settings.api_token, *settings.api_clients.values(), *vendors.values()}


@pytest.mark.parametrize("service", [s.name for s in LINE.services])
def test_a_service_holds_credentials_only_for_its_command_paths(service: str) -> None:
    settings = settings_class(service)()
    for target, token in settings.upstream_tokens.items():
        if (service, target) in COMMANDS:
            assert token in write_tokens(target), f"{target} refuses {service}'s command"
        else:
            assert (service, target) in READ_WITH_TOKEN, f"{service} holds a token for {target}"
            assert token not in write_tokens(target), f"{service} can write to {target}"


@pytest.mark.parametrize("service", [s.name for s in LINE.services])
def test_a_service_accepts_other_services_only_along_command_paths(service: str) -> None:
    settings = settings_class(service)()
    for caller in settings.api_clients:
        assert (caller, service) in COMMANDS, f"{service} accepts writes from {caller}"


@pytest.mark.anyio
async def test_the_only_writes_between_services_are_the_command_paths(state_dir: Path) -> None:
    async with in_process_line([s.name for s in LINE.services], state_dir) as line:
        await seed_line(line.clients, line.control, API_TOKEN, Size.SMALL, seed=5)
        await line.control.advance(by="2d")  # TRNs issued, record systems decide

        writes = {(c.caller, c.target) for c in line.calls if c.method != "GET"}
        assert writes, "the line made no writes at all: the test would prove nothing"
        assert writes <= COMMANDS, f"writes outside the command paths: {writes - COMMANDS}"
        assert ("register", "dqt") in writes
        assert ("manage", "apply") in writes
        assert writes & RECORD_SYSTEM_WRITES

        reads = {(c.caller, c.target) for c in line.calls if c.method == "GET"}
        copies = {(e.consumer, e.owner) for e in LINE.edges}
        allowed = copies | COMMANDS
        assert reads <= allowed, f"reads with no edge or command behind them: {reads - allowed}"
