"""Drives a running line over HTTP: one clock for all services, edges run on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from typing import Any, Protocol

import httpx
from fastapi import FastAPI

from serviceline.clock import parse_duration
from serviceline.settings import ServiceSettings
from serviceline.topology import LINE, Edge, Mechanism, Topology


class AppFactory(Protocol):
    def __call__(
        self,
        settings: Any = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> FastAPI: ...


def app_factory(name: str, topology: Topology = LINE) -> AppFactory:
    factory: AppFactory = import_module(f"{topology.service(name).package}.main").create_app
    return factory


def settings_class(name: str, topology: Topology = LINE) -> type[ServiceSettings]:
    module = import_module(f"{topology.service(name).package}.settings")
    for value in vars(module).values():
        is_settings = isinstance(value, type) and issubclass(value, ServiceSettings)
        # the class the module defines, not a base it imports (a record system's, say)
        if is_settings and value.__module__ == module.__name__:
            found: type[ServiceSettings] = value
            return found
    raise LookupError(f"{name} has no settings class")


class ControlError(RuntimeError):
    pass


@dataclass
class LineControl:
    """The services' admin APIs, driven together so that every clock reads the same time."""

    clients: Mapping[str, httpx.AsyncClient]
    admin_token: str
    topology: Topology = LINE
    # a first copy at the real line's scale can run for many minutes in one call
    timeout: float = 3600.0
    log: list[dict[str, Any]] = field(default_factory=list)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def _call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.clients[service].request(
            method, path, headers=self._headers(), timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            raise ControlError(f"{service} {method} {path}: {response.status_code} {response.text}")
        return response.json()

    async def clocks(self) -> dict[str, dict[str, Any]]:
        return {name: await self._call(name, "GET", "/admin/clock") for name in self.clients}

    async def now(self) -> datetime:
        clocks = await self.clocks()
        return max(datetime.fromisoformat(c["now"]) for c in clocks.values())

    async def advance(
        self, by: str | None = None, to: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Move every clock to the target, running exactly the jobs that fall due, in time order.

        Copies change nothing another service reads, so each service runs its own copies alone
        up to the next moment a job anywhere changes what others see. There the services with
        work at that moment take turns, the owners they command first, so the same moment always
        plays out the same way; the others catch up later, at the latest at the target.
        """
        clocks = await self.clocks()
        start = max(datetime.fromisoformat(c["now"]) for c in clocks.values())
        if to is not None and to.tzinfo is None:
            to = to.replace(tzinfo=UTC)  # the services read a time without an offset as UTC
        target = to if to is not None else start + parse_duration(by or "")
        due = {name: _moment(view["next_due"]) for name, view in clocks.items()}
        visible = {name: _moment(view["next_visible_due"]) for name, view in clocks.items()}
        order = self._order()
        ran: list[dict[str, Any]] = []

        def note(name: str, result: Any) -> None:
            due[name] = _moment(result["next_due"])
            visible[name] = _moment(result["next_visible_due"])
            ran.extend({"service": name, **job} for job in result["ran"])

        while True:
            step = min(
                (d for d in visible.values() if d is not None and d <= target), default=target
            )
            final = step >= target
            early = [n for n in order if final or ((d := due[n]) is not None and d < step)]
            results = await asyncio.gather(
                *(self._advance_one(name, step, stop_short=True) for name in early)
            )
            for name, result in zip(early, results, strict=True):
                note(name, result)
            acting = {n for n in order if visible[n] == step}
            reached = self._commanded(acting)
            movers = [n for n in order if final or due[n] == step or n in reached]
            for name in movers:
                note(name, await self._advance_one(name, step, stop_short=False))
            # a command may have given an owner new work (a TRN request to complete)
            for name in reached - set(movers) - acting:
                note(name, await self._call(name, "GET", "/admin/clock") | {"ran": []})
            if final:
                ran.sort(key=lambda job: job["due_at"])
                self.log.extend(ran)
                return ran

    def _commanded(self, callers: set[str]) -> set[str]:
        """The callers and every service their commands reach, directly or through another."""
        reached = set(callers)
        while True:
            more = {c.target for c in self.topology.commands if c.caller in reached} & set(
                self.clients
            )
            if more <= reached:
                return reached
            reached |= more

    async def _advance_one(self, name: str, step: datetime, *, stop_short: bool) -> Any:
        body = {"to": step.isoformat(), "stop_short": stop_short}
        return await self._call(name, "POST", "/admin/clock/advance", json=body)

    def _order(self) -> list[str]:
        """Topology order, but an owner before the services that command it."""
        names = [s.name for s in self.topology.services if s.name in self.clients]
        ordered: list[str] = []
        while len(ordered) < len(names):
            for name in names:
                targets = {c.target for c in self.topology.commands if c.caller == name}
                waiting = [t for t in targets if t in names and t not in ordered and t != name]
                if name not in ordered and not waiting:
                    ordered.append(name)
                    break
        return ordered

    async def read_log(
        self, service: str, log: str, after: int, limit: int = 1000
    ) -> dict[str, Any]:
        """A page of one of a service's admin logs (changelog, applied, copy-runs) by id."""
        page: dict[str, Any] = await self._call(
            service, "GET", f"/admin/{log}", params={"after": after, "limit": limit}
        )
        return page

    async def run_edge(self, edge: Edge | str, *, full: bool = False) -> dict[str, Any]:
        edge = self.topology.edge(edge) if isinstance(edge, str) else edge
        result: dict[str, Any] = await self._call(
            edge.consumer,
            "POST",
            f"/admin/edges/{edge.owner}/{edge.entity}/run",
            params={"full": str(full).lower()},
        )
        return result

    async def run_job(self, service: str, job: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(service, "POST", f"/admin/jobs/{job}/run")
        return result

    async def sync(self, edges: Sequence[Edge] | None = None) -> list[dict[str, Any]]:
        """Run edges now, owners' own copies first, so a chain fills in one pass."""
        chosen = edges if edges is not None else self.topology.copy_order()
        results = []
        for edge in chosen:
            running = edge.consumer in self.clients and edge.owner in self.clients
            if running and edge.mechanism is not Mechanism.EVENT:
                results.append(await self.run_edge(edge))
        return results


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
