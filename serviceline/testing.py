"""The pytest plugin every service's tests share: in-process lines, builders, fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio import to_thread
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from serviceline.audit.drift import Auditor
from serviceline.dashboard.process import RunningDashboard, start_dashboard
from serviceline.model.credentials import credential
from serviceline.model.lines import Line, current_line
from serviceline.runtime.settings import ServiceSettings, sqlite_url
from serviceline.runtime.upstream import Upstream, bearer
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import LineConfig, RunningLine, alive, free_port_offset, start_line

ADMIN_TOKEN = "test-admin"
API_TOKEN = "test-api"
AUDITOR_TOKEN = "test-auditor"
API = bearer(API_TOKEN)
ADMIN = bearer(ADMIN_TOKEN)
AUDITOR = bearer(AUDITOR_TOKEN)
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# a browser that stays on this machine: no updates, no sync, no QUIC probes
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def headers_of(holder: str, target: str) -> dict[str, str]:
    """The headers service `holder` calls `target` with: the credential the topology gives it."""
    return bearer(credential(holder, target))


POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = "serviceline_test_"


@dataclass
class DatabasesUnderTest:
    """Where services under test keep their data: a SQLite file each under the test's state
    folder, or, given a PostgreSQL server, a fresh database each, dropped when the test ends."""

    server: URL | None = None
    created: dict[tuple[Path, str], str] = field(default_factory=dict)

    def url(self, state_dir: Path, name: str) -> str:
        if self.server is None:
            return sqlite_url(state_dir, name)
        database = self.created.get((state_dir, name))
        if database is None:
            # the process id keeps runs side by side apart, and tells `sweep` whose it is
            label = re.sub(r"\W", "_", name)
            database = f"{DATABASE_PREFIX}{os.getpid()}_{len(self.created)}_{label}"
            self.execute(f'CREATE DATABASE "{database}"')
            self.created[(state_dir, name)] = database
        return self.server.set(database=database).render_as_string(hide_password=False)

    def drop(self) -> None:
        for database in self.created.values():
            self.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.created.clear()

    def sweep(self) -> None:
        """Drop what earlier runs that died left behind."""
        for database in self.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, :prefix)",
            prefix=DATABASE_PREFIX,
        ):
            owner = int(database.removeprefix(DATABASE_PREFIX).split("_")[0])
            if owner != os.getpid() and not alive(owner):
                self.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def execute(self, statement: str, **values: str) -> list[str]:
        assert self.server is not None
        engine = create_engine(self.server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                result = connection.execute(text(statement), values)
                return list(result.scalars()) if result.returns_rows else []
        finally:
            engine.dispose()


def postgres_server(url: str) -> URL:
    """A server URL as the services' driver (psycopg 3) reads it, whichever form it came in."""
    return make_url(url).set(drivername="postgresql+psycopg")


DATABASES = DatabasesUnderTest()


def database_url(state_dir: Path, name: str) -> str:
    """The database `name` under `state_dir`: the same one each time within a test."""
    return DATABASES.url(state_dir, name)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("serviceline")
    group.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="where services under test keep their data: a SQLite file each, or a fresh "
        "PostgreSQL database each (on --postgres-server), dropped after each test",
    )
    group.addoption(
        "--postgres-server",
        default=POSTGRES_SERVER,
        metavar="URL",
        help=f"the server --database postgresql creates databases on (default {POSTGRES_SERVER})",
    )
    group.addoption(
        "--compose",
        action="store_true",
        help="also run the tests marked compose: they build the image and run the stack in "
        "Docker (make compose-smoke prepares the engine)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("database") != "postgresql":
        return
    DATABASES.server = postgres_server(config.getoption("postgres_server"))
    try:
        DATABASES.sweep()
    except OperationalError as error:
        raise pytest.UsageError(f"--database postgresql: {error.orig}") from error


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("compose"):
        return
    # the compose tests need Docker and minutes; they run when asked for, never by accident
    deselected = [item for item in items if item.get_closest_marker("compose")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


def pytest_report_header(config: pytest.Config) -> str:
    if DATABASES.server is None:
        return "databases: SQLite, a file per service under each test's state folder"
    where = DATABASES.server.render_as_string(hide_password=True)
    return f"databases: PostgreSQL at {where}, a fresh database per service and test"


@pytest.fixture(autouse=True)
def fresh_databases() -> Iterator[DatabasesUnderTest]:
    """Drops, after each test, the PostgreSQL databases it was given."""
    yield DATABASES
    DATABASES.drop()


def reference(*parts: str) -> Path:
    """A file of the real services' specs and samples, kept beside the repository, not in it."""
    return ROOT.parent.joinpath("shared", "reference", *parts)


def names_field(response: httpx.Response, field: str) -> bool:
    """Whether a refusal names `field`, as its message's opening or as its errors' location."""
    body = response.json()
    if "errors" in body:  # a JSON:API error object, as Publish's API v1 answers
        return any(str(error.get("detail", "")).startswith(f"{field}:") for error in body["errors"])
    detail = body["detail"]
    if isinstance(detail, str):
        return detail.startswith(f"{field}:")
    return any(
        field in error["loc"]
        or (path := located(error["loc"])) == field
        or path.endswith((f".{field}", f" {field}"))
        for error in detail
    )


def located(loc: list[str | int]) -> str:
    """A validation error's location as a handler names it: `[1] trn`, `person.dateOfBirth`."""
    path = ""
    for part in loc[1:]:  # after body, query or path
        if isinstance(part, int):
            path += f"[{part}]" if path else f"[{part}] "
        else:
            path += part if not path or path.endswith(" ") else f".{part}"
    return path


def refusal(response: httpx.Response) -> str:
    """A 422's first error as "where: what", as the handler that refused said it; a real-shaped
    API's own error body as it stands."""
    detail = response.json().get("detail")
    if not isinstance(detail, list):
        return response.text
    return f"{located(detail[0]['loc'])}: {detail[0]['msg']}"


@dataclass(frozen=True)
class Call:
    """One request a service made to another."""

    caller: str
    target: str
    method: str
    path: str


class WatchedTransport(httpx.AsyncBaseTransport):
    """Passes a service's requests to a peer, noting each one.

    The peer answers in a context of its own, as over a socket: nothing of the caller's context
    variables (its trace, the copy run metering its requests) reaches it but what the request
    carries.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, caller: str, target: str, calls: list[Call]
    ) -> None:
        self.inner, self.caller, self.target, self.calls = inner, caller, target, calls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(Call(self.caller, self.target, request.method, request.url.path))
        answering = self.inner.handle_async_request(request)
        return await asyncio.create_task(answering, context=contextvars.Context())


@dataclass
class LineUnderTest:
    """Some services of the line, a client for each, and the control that drives their clocks."""

    clients: dict[str, httpx.AsyncClient]
    control: LineControl
    # in-process lines note every request one service makes to another
    calls: list[Call] = field(default_factory=list)
    # what reaches each service of an in-process line, for another app to be wired to it
    transports: dict[str, httpx.AsyncBaseTransport] = field(default_factory=dict)

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.clients[name]

    @contextlib.asynccontextmanager
    async def upstream(self, holder: str, target: str) -> AsyncIterator[Upstream]:
        """`target` as service `holder` reaches it: an upstream client with its credential."""
        upstream = Upstream.connect(
            target,
            f"http://{target}",
            token=credential(holder, target),
            transport=self.transports[target],
        )
        try:
            yield upstream
        finally:
            await upstream.aclose()

    def spans(self) -> InMemorySpanExporter:
        """One exporter of the test's own, given every span this in-process line's services
        finish from now on; each must trace (the line started with `tracing=True`)."""
        exporter = InMemorySpanExporter()
        for name, transport in self.transports.items():
            assert isinstance(transport, httpx.ASGITransport), "an in-process line's own"
            tracing = transport.app.state.kernel.tracing  # type: ignore[attr-defined]
            assert tracing is not None, f"{name} does not trace: start the line with tracing=True"
            tracing.provider.add_span_processor(SimpleSpanProcessor(exporter))
        return exporter

    def auditor(self, **options: Any) -> Auditor:
        """The drift auditor of these services, reading with the auditor's token."""
        return Auditor(
            clients=self.clients, token=AUDITOR_TOKEN, topology=self.control.topology, **options
        )

    async def copy_of(self, service: str, entity: str, key: str) -> dict[str, Any]:
        """`service`'s copy of one record, which must be there."""
        response = await self[service].get(f"/copies/{entity}/{key}", headers=API)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def service_settings(
    name: str, state_dir: Path, *, line: Line | None = None, **overrides: Any
) -> ServiceSettings:
    """Settings for one service in a test: its own database under `state_dir`."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "database_url": database_url(state_dir, name),
        "admin_token": ADMIN_TOKEN,
        "api_token": API_TOKEN,
        "auditor_token": AUDITOR_TOKEN,
    }
    values.update(overrides)
    return (line or current_line()).service(name).settings(**values)


def service_app(
    name: str,
    settings: ServiceSettings,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """One of the line's services as its process builds it, given its settings."""
    line = current_line()
    return line.service(name).create_app(settings, transports, topology=line.topology)


def left_out(target: str) -> httpx.MockTransport:
    """A service left out of the line: down, never whatever else listens at its usual port."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"{target} is not in this line", request=request)

    return httpx.MockTransport(refuse)


@contextlib.asynccontextmanager
async def in_process_line(
    names: Iterable[str], state_dir: Path, *, line: Line | None = None, **overrides: Any
) -> AsyncIterator[LineUnderTest]:
    """Real service apps wired to each other through ASGI transports: no sockets; the line
    installed unless another is given."""
    names = list(names)
    line = line or current_line()
    topology = line.topology
    calls: list[Call] = []
    peers: dict[str, dict[str, httpx.AsyncBaseTransport]] = {name: {} for name in names}
    apps = {
        name: line.service(name).create_app(
            service_settings(name, state_dir, line=line, **overrides),
            peers[name],
            topology=topology,
        )
        for name in names
    }
    transports = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
    absent = {service.name for service in topology.services} - set(names)
    for caller, reachable in peers.items():
        reachable.update({target: left_out(target) for target in absent})
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
        control = LineControl(clients, ADMIN_TOKEN, topology)
        yield LineUnderTest(clients, control, calls, dict(transports))


@pytest.fixture
def port_offset() -> int:
    return free_port_offset()


@contextlib.contextmanager
def line_and_dashboard(
    state_dir: Path, names: Sequence[str], port_offset: int
) -> Iterator[tuple[RunningLine, RunningDashboard]]:
    """A real line of `names` and its dashboard, which looks at it every half second."""
    config = LineConfig(
        state_dir, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=port_offset
    )
    running = start_line(config, list(names), topology=current_line().topology)
    try:
        dashboard = start_dashboard(config, settings={"poll_seconds": 0.5})
        try:
            yield running, dashboard
        finally:
            dashboard.stop()
    finally:
        running.stop()


@contextlib.asynccontextmanager
async def process_line(
    names: Iterable[str], state_dir: Path, port_offset: int | None = None, **config: Any
) -> AsyncIterator[LineUnderTest]:
    """Real service processes started by the launcher, talking real HTTP on loopback; `config`:
    more of the line's settings (LineConfig's fields, e.g. clock_mode, edge_overrides)."""
    chosen = list(names)
    line_config = LineConfig(
        state_dir,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        auditor_token=AUDITOR_TOKEN,
        database_urls={name: database_url(state_dir, name) for name in chosen},
        port_offset=free_port_offset() if port_offset is None else port_offset,
        **config,
    )
    start = functools.partial(start_line, topology=current_line().topology)
    line = await to_thread.run_sync(start, line_config, chosen)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=line_config.url(line.topology.service(name)), timeout=60
                    )
                )
                for name in chosen
            }
            yield LineUnderTest(clients, LineControl(clients, ADMIN_TOKEN, line.topology))
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


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright; it never downloads a browser of its own."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
