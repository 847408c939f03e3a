"""The pytest plugin every service's tests share: in-process lines, builders, fixtures."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from serviceline.control import LineControl, app_factory, settings_class
from serviceline.settings import ServiceSettings

ADMIN_TOKEN = "test-admin"
API_TOKEN = "test-api"
API = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass
class InProcessLine:
    """Services wired to each other through ASGI transports: real apps, no sockets."""

    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    control: LineControl

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.clients[name]


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
) -> AsyncIterator[InProcessLine]:
    names = list(names)
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    apps = {
        name: app_factory(name)(service_settings(name, state_dir, **overrides), transports)
        for name in names
    }
    transports.update({name: httpx.ASGITransport(app=app) for name, app in apps.items()})
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=transports[name], base_url=f"http://{name}")
            )
            for name in names
        }
        yield InProcessLine(apps, clients, LineControl(clients, ADMIN_TOKEN))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path
