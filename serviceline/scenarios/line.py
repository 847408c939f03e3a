"""The line a scenario runs on: started for it or attached to, and what a step does to it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol

import anyio
import httpx
from anyio import to_thread

from serviceline.model.topology import Topology
from serviceline.runtime.upstream import bearer
from serviceline.scenarios.errors import RunError, StepError
from serviceline.scenarios.jobs import first_line, summarise
from serviceline.stack.control import ControlError, LineControl
from serviceline.stack.launcher import LineConfig, RunningLine, start_line

# how long a process killed on purpose may take to be seen gone
DEATH_WAIT = 10.0


class Stack(Protocol):
    """The line a scenario drives: a client per running service, and what it may do to them."""

    clients: dict[str, httpx.AsyncClient]
    # the line as its settings run it: edges overridden, none for what a service reads live
    topology: Topology
    # a line started elsewhere: it may hold records the story's own clash with
    elsewhere: bool

    async def stop(self, name: str, *, kill: bool) -> None: ...

    async def start(self, name: str) -> None: ...

    async def reap(self) -> set[str]:
        """Services that have exited unasked, no longer among the clients."""
        ...


class ProcessStack:
    """A line the scenario started itself: it may stop, kill and restart its services."""

    def __init__(self, line: RunningLine) -> None:
        self.line = line
        self.topology = line.topology
        self.elsewhere = False
        self.clients: dict[str, httpx.AsyncClient] = {}

    def connect(self, name: str) -> None:
        url = self.line.config.url(self.line.topology.service(name))
        self.clients[name] = httpx.AsyncClient(base_url=url, timeout=300)

    async def _forget(self, name: str) -> None:
        await self.clients.pop(name).aclose()

    async def stop(self, name: str, *, kill: bool) -> None:
        await self._forget(name)
        await to_thread.run_sync(partial(self.line.stop_service, name, kill=kill))

    async def start(self, name: str) -> None:
        await to_thread.run_sync(self.line.start_service, name)
        self.connect(name)

    async def reap(self) -> set[str]:
        gone = set(self.line.exited()) & set(self.clients)
        for name in gone:
            await self._forget(name)
        return gone

    async def close(self) -> None:
        for name in list(self.clients):
            await self._forget(name)


class AttachedStack:
    """A line someone else started: driven and audited, never stopped or started from here."""

    def __init__(self, clients: dict[str, httpx.AsyncClient], topology: Topology) -> None:
        self.clients = clients
        self.topology = topology
        self.elsewhere = True

    async def stop(self, name: str, *, kill: bool) -> None:
        raise StepError(f"cannot stop {name} of a line started elsewhere; run without --url")

    async def start(self, name: str) -> None:
        raise StepError(f"cannot start {name} of a line started elsewhere; run without --url")

    async def reap(self) -> set[str]:
        return set()


@contextlib.asynccontextmanager
async def own_stack(
    config: LineConfig, names: Sequence[str], topology: Topology
) -> AsyncIterator[ProcessStack]:
    """A fresh line of just these services, stopped again when the scenario ends."""
    start = partial(start_line, topology=topology)
    line = await to_thread.run_sync(start, config, list(names))
    stack = ProcessStack(line)
    try:
        for name in names:
            stack.connect(name)
        yield stack
    finally:
        await stack.close()
        await to_thread.run_sync(line.stop)


@contextlib.asynccontextmanager
async def attached_stack(
    host: str, port_offset: int, names: Sequence[str], topology: Topology
) -> AsyncIterator[AttachedStack]:
    """Clients for a running line's services; every service the scenario needs must answer."""
    async with contextlib.AsyncExitStack() as exits:
        clients = {}
        for name in names:
            url = f"http://{host}:{topology.service(name).port + port_offset}"
            client = await exits.enter_async_context(httpx.AsyncClient(base_url=url, timeout=300))
            try:
                healthy = (await client.get("/health", timeout=2)).status_code == 200
            except httpx.TransportError:
                healthy = False
            if not healthy:
                raise RunError(f"{name} does not answer at {url}; the scenario needs it")
            clients[name] = client
        yield AttachedStack(clients, topology)


class Line:
    """The running services as the steps drive them: calls, the clock, deaths, the jobs run."""

    def __init__(self, stack: Stack, tokens: Mapping[str, str], present: Collection[str]) -> None:
        self.stack = stack
        self.topology = stack.topology
        # by token name, as a step names it: api, admin, auditor
        self.tokens = dict(tokens)
        # the services the scenario starts, as the job summaries count them
        self.present = set(present)
        self.running = stack.clients
        self.control = LineControl(self.running, self.tokens["admin"], self.topology)
        self.jobs: list[dict[str, Any]] = []
        # those that died during the current step
        self.died: set[str] = set()
        # bumped by whatever may change what an audit finds, so an earlier audit is not reused
        self.changes = 0

    def changed(self) -> None:
        self.changes += 1

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        token: str = "api",
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        if service not in self.running:
            raise StepError(f"{service} is not running")
        secret = self.tokens.get(token)
        headers = bearer(secret)
        return await self.running[service].request(
            method,
            path,
            params=params or None,
            json=body if method in ("POST", "PUT", "PATCH") and body is not None else None,
            headers=headers,
        )

    async def reap(self, *, wait: bool) -> set[str]:
        """Services that have died since the last look; if some are meant to, give them time."""
        died = await self.stack.reap()
        deadline = time.monotonic() + (DEATH_WAIT if wait else 0)
        while not died and time.monotonic() < deadline:
            await anyio.sleep(0.1)
            died = await self.stack.reap()
        if died:
            self.changed()
            self.died |= died
        return died

    async def advance_to(self, target: datetime) -> list[dict[str, Any]]:
        """Move every running clock to `target`; a service that dies on the way is left behind."""
        self.changed()
        while True:
            try:
                ran = await self.control.advance(to=target)
            except (ControlError, httpx.TransportError) as error:
                if not await self.reap(wait=True):
                    raise StepError(f"the line stopped answering: {first_line(error)}") from error
                continue
            self.jobs += ran
            return ran

    def acting_on(self, services: set[str]) -> set[str]:
        """The services that change these services' records: themselves, and who commands them."""
        acting = set(services)
        while True:
            more = {c.caller for c in self.topology.commands if c.target in acting} - acting
            if not more:
                return acting
            acting |= more

    async def when(self, acting: set[str]) -> tuple[datetime, datetime | None]:
        """The line's time, and when the next job of any of the `acting` services falls due."""
        clocks = await self.control.clocks()
        now = max(datetime.fromisoformat(view["now"]) for view in clocks.values())
        due = [
            datetime.fromisoformat(view["next_due"])
            for name, view in clocks.items()
            if name in acting and view["next_due"]
        ]
        return now, min(due, default=None)

    def summary(self, ran: Sequence[Mapping[str, Any]]) -> str:
        """What the jobs did, in the order they first ran; quiet runs are only counted."""
        return summarise(ran, self.present, self.topology)
