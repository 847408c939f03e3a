"""The pytest plugin every service's tests share: in-process lines, builders, fixtures."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio import to_thread

from serviceline.control import LineControl, app_factory, settings_class
from serviceline.launcher import LineConfig, start_line
from serviceline.settings import ServiceSettings
from serviceline.topology import LINE

ADMIN_TOKEN = "test-admin"
API_TOKEN = "test-api"
API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROOT = Path(__file__).resolve().parents[1]


def reference(*parts: str) -> Path:
    """A file of the real services' specs and samples, kept beside the repository, not in it."""
    return ROOT.parent.joinpath("shared", "reference", *parts)


def names_field(response: httpx.Response, field: str) -> bool:
    """Whether a refusal names `field`: our own messages start with it, pydantic's locate it."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail.startswith(f"{field}:")
    return any(field in error["loc"] for error in detail)


@dataclass(frozen=True)
class Call:
    """One request a service made to another."""

    caller: str
    target: str
    method: str
    path: str


class WatchedTransport(httpx.AsyncBaseTransport):
    """Passes a service's requests to a peer, noting each one."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, caller: str, target: str, calls: list[Call]
    ) -> None:
        self.inner, self.caller, self.target, self.calls = inner, caller, target, calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(Call(self.caller, self.target, request.method, request.url.path))
        return await self.inner.handle_async_request(request)


@dataclass
class LineUnderTest:
    """Some services of the line, a client for each, and the control that drives their clocks."""

    clients: dict[str, httpx.AsyncClient]
    control: LineControl
    # in-process lines note every request one service makes to another
    calls: list[Call] = field(default_factory=list)

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.clients[name]

    async def copy_of(self, service: str, entity: str, key: str) -> dict[str, Any]:
        """`service`'s copy of one record, which must be there."""
        response = await self[service].get(f"/copies/{entity}/{key}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def publish_provider(self, provider: dict[str, Any], *sites: dict[str, Any]) -> None:
        """Create a provider in Publish, then each of its sites."""
        publish = self["publish"]
        assert (await publish.post("/providers", json=provider, headers=API)).is_success
        for site in sites:
            path = f"/providers/{provider['code']}/sites"
            assert (await publish.post(path, json=site, headers=API)).is_success


def service_settings(name: str, state_dir: Path, **overrides: Any) -> ServiceSettings:
    """Settings for one service in a test: its own database under `state_dir`."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "admin_token": ADMIN_TOKEN,
        "api_token": API_TOKEN,
    }
    values.update(overrides)
    return settings_class(name)(**values)


@contextlib.asynccontextmanager
async def in_process_line(
    names: Iterable[str], state_dir: Path, **overrides: Any
) -> AsyncIterator[LineUnderTest]:
    """Real service apps wired to each other through ASGI transports: no sockets."""
    names = list(names)
    calls: list[Call] = []
    peers: dict[str, dict[str, httpx.AsyncBaseTransport]] = {name: {} for name in names}
    apps = {
        name: app_factory(name)(service_settings(name, state_dir, **overrides), peers[name])
        for name in names
    }
    transports = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
    for caller, reachable in peers.items():
        reachable.update(
            {
                target: WatchedTransport(transport, caller, target, calls)
                for target, transport in transports.items()
            }
        )
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=transports[name], base_url=f"http://{name}")
            )
            for name in names
        }
        yield LineUnderTest(clients, LineControl(clients, ADMIN_TOKEN), calls)


@contextlib.asynccontextmanager
async def process_line(
    names: Iterable[str], state_dir: Path, port_offset: int = 1000
) -> AsyncIterator[LineUnderTest]:
    """Real service processes started by the launcher, talking real HTTP on loopback."""
    config = LineConfig(
        state_dir, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=port_offset
    )
    chosen = list(names)
    line = await to_thread.run_sync(start_line, config, chosen)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(base_url=config.url(LINE.service(name)), timeout=60)
                )
                for name in chosen
            }
            yield LineUnderTest(clients, LineControl(clients, ADMIN_TOKEN))
    finally:
        await to_thread.run_sync(line.stop)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path
