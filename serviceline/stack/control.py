"""Drives a running line over HTTP: one clock for all services, edges run on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from serviceline.model.topology import Edge, Mechanism, Topology
from serviceline.runtime.clock import parse_duration
from serviceline.runtime.upstream import bearer


class ControlError(RuntimeError):
    pass


@dataclass
class LineControl:
    """The services' admin APIs, driven together so that every clock reads the same time."""

    clients: Mapping[str, httpx.AsyncClient]
    admin_token: str
    topology: Topology
    # a first copy at the real line's scale can run for many minutes in one call
    timeout: float = 3600.0
    log: list[dict[str, Any]] = field(default_factory=list)
    # keep what each service last said of its clock from one advance to the next: only for a
    # driver that reports every write it makes through `touched`
    remember_views: bool = False
    # HTTP calls made to the services' admin APIs
    calls: int = 0
    _due: dict[str, datetime | None] = field(default_factory=dict, init=False, repr=False)
    _visible: dict[str, datetime | None] = field(default_factory=dict, init=False, repr=False)
    # a later next visible moment, and the owners' heads it holds for
    _forecast: dict[str, tuple[datetime | None, dict[str, int]]] = field(
        default_factory=dict, init=False, repr=False
    )
    _now: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    # the owners' change-log heads known to hold until something writes to them
    _heads: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    # the services whose copies change their own records: their heads move as they advance
    _rewriting: set[str] = field(default_factory=set, init=False, repr=False)

    def _headers(self) -> dict[str, str]:
        return bearer(self.admin_token)

    async def _call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        self.calls += 1
        response = await self.clients[service].request(
            method, path, headers=self._headers(), timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            raise ControlError(f"{service} {method} {path}: {response.status_code} {response.text}")
        return response.json()

    async def clocks(self) -> dict[str, dict[str, Any]]:
        clocks = {name: await self._call(name, "GET", "/admin/clock") for name in self.clients}
        for name, view in clocks.items():
            self._note(name, view)
        return clocks

    async def now(self) -> datetime:
        clocks = await self.clocks()
        return max(datetime.fromisoformat(c["now"]) for c in clocks.values())

    def touched(self, services: Collection[str]) -> None:
        """Something outside the line wrote to these services: what was known of them is not."""
        for name in services:
            self._forget(name)

    def _forget(self, name: str) -> None:
        for known in (self._due, self._visible, self._forecast, self._now, self._heads):
            known.pop(name, None)

    def _note(self, name: str, view: Mapping[str, Any]) -> None:
        self._due[name] = _moment(view["next_due"])
        self._visible[name] = _moment(view["next_visible_due"])
        if view.get("unmoved_heads"):
            forecast = _moment(view["next_visible_if_unmoved"])
            self._forecast[name] = (forecast, dict(view["unmoved_heads"]))
        else:
            self._forecast.pop(name, None)
        self._now[name] = datetime.fromisoformat(view["now"])
        if view.get("copies_change_records"):
            self._rewriting.add(name)
        if view.get("head") is None:
            self._heads.pop(name, None)
        else:
            self._heads[name] = int(view["head"])

    async def _views(self) -> None:
        if not self.remember_views:
            self._due.clear()
        for name in self.clients:
            if name not in self._due:
                self._note(name, await self._call(name, "GET", "/admin/clock"))

    async def advance(
        self,
        by: str | None = None,
        to: datetime | None = None,
        *,
        only: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Move the clocks to the target, running exactly the jobs that fall due, in time order.

        Copies change nothing another service reads, so each service runs its own copies alone
        up to the next moment a job anywhere changes what others see. There the services with
        work at that moment take turns, the owners they command first, after everyone who
        reads what the moment changes has caught up to it; the others catch up later, at the
        latest at the target. With `only`, the target is reached by those services and the
        ones they command; every job due before it has run, but the other clocks may stay
        behind and the jobs due at the target itself may wait for a later advance.
        """
        await self._views()
        start = max(self._now.values())
        if to is not None and to.tzinfo is None:
            to = to.replace(tzinfo=UTC)  # the services read a time without an offset as UTC
        target = to if to is not None else start + parse_duration(by or "")
        order = self._order()
        keep = set(order) if only is None else self._commanded(set(only)) & set(order)
        ran: list[dict[str, Any]] = []
        while True:
            visible = {n: self._visible_at(n) for n in order}
            step = min(
                (d for d in visible.values() if d is not None and d <= target), default=target
            )
            acting = {n for n in order if visible[n] == step}
            # an acting service first runs its own jobs before the moment: its job due then may
            # find it has nothing to do, and the moment is no step after all
            first = [n for n in order if n in acting and self._before(n, step)]
            if first:
                # and then, while its jobs change nothing others see, up to the others' next
                later = (d for n in order if n not in first and (d := visible[n]) is not None)
                await self._early(first, min([*later, target]), ran, until_visible=True)
                continue
            final = step >= target
            reached = self._commanded(acting)
            # what the moment's jobs change, and at the target what the caller will write to
            changing = reached | keep if final else reached
            readers = {n for n in order if self._reads_from(n, changing)}
            # before an owner's clock passes a moment, whoever reads it has read it up to there;
            # at the target every job due before it runs
            early = [
                n
                for n in order
                if self._before(n, step) and (final or self._reads_from(n, reached | readers))
            ]
            await self._early(early, step, ran)
            movers = [
                n
                for n in order
                if n in reached or (final and n in keep) or (self._due[n] == step and n in readers)
            ]
            # the services a mover's commands reached after they last said where they stand: a
            # command may have given an owner new work (a TRN request to complete) or records
            commanded: set[str] = set()
            for name in movers:
                self._result(name, await self._advance_one(name, step, stop_short=False), ran)
                commanded = (commanded | self._commanded({name})) - {name}
                for owner in commanded:
                    self._heads.pop(owner, None)
            for name in (n for n in order if n in commanded):
                self._note(name, await self._call(name, "GET", "/admin/clock"))
            if final:
                ran.sort(key=lambda job: job["due_at"])
                self.log.extend(ran)
                return ran

    def _visible_at(self, name: str) -> datetime | None:
        """When the service next changes what others see: later while the owners it read stand
        where its copies found nothing."""
        forecast = self._forecast.get(name)
        if forecast is not None and all(
            self._heads.get(owner) == head for owner, head in forecast[1].items()
        ):
            return forecast[0]
        return self._visible[name]

    def _before(self, name: str, step: datetime) -> bool:
        due = self._due[name]
        return due is not None and due < step

    def _reads_from(self, consumer: str, owners: set[str]) -> bool:
        return any(edge.owner in owners for edge in self.topology.edges_into(consumer))

    async def _early(
        self,
        names: list[str],
        step: datetime,
        ran: list[dict[str, Any]],
        *,
        until_visible: bool = False,
    ) -> None:
        """Advance `names` side by side, each after the owners it reads whose heads move then."""
        waiting = list(names)
        while waiting:
            moving = self._rewriting & set(waiting)
            wave = [n for n in waiting if not self._reads_from(n, moving - {n})] or waiting
            # owners that read each other advance together, and none is told the others' heads
            unknown = moving & set(wave)
            results = await asyncio.gather(
                *(
                    self._advance_one(
                        n, step, stop_short=True, unknown=unknown, until_visible=until_visible
                    )
                    for n in wave
                )
            )
            for name, result in zip(wave, results, strict=True):
                self._result(name, result, ran)
            waiting = [n for n in waiting if n not in wave]

    def _result(self, name: str, result: Mapping[str, Any], ran: list[dict[str, Any]]) -> None:
        self._note(name, result)
        ran.extend({"service": name, **job} for job in result["ran"])

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

    async def _advance_one(
        self,
        name: str,
        step: datetime,
        *,
        stop_short: bool,
        unknown: Collection[str] = (),
        until_visible: bool = False,
    ) -> Any:
        owners = {edge.owner for edge in self.topology.edges_into(name)} - set(unknown)
        heads = {owner: self._heads[owner] for owner in owners if owner in self._heads}
        body = {
            "to": step.isoformat(),
            "stop_short": stop_short,
            "until_visible": until_visible,
            "heads": heads,
        }
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

    async def read_admin(
        self, service: str, path: str, params: Mapping[str, str] | None = None
    ) -> Any:
        """One of a service's admin views, e.g. `jobs`, `edges`, `faults`."""
        return await self._call(service, "GET", f"/admin/{path}", params=params)

    async def run_edge(self, edge: Edge | str, *, full: bool = False) -> dict[str, Any]:
        edge = self.topology.edge(edge) if isinstance(edge, str) else edge
        self.touched({edge.consumer})
        result: dict[str, Any] = await self._call(
            edge.consumer,
            "POST",
            f"/admin/edges/{edge.owner}/{edge.entity}/run",
            params={"full": str(full).lower()},
        )
        return result

    async def run_job(self, service: str, job: str) -> dict[str, Any]:
        self.touched(self._commanded({service}))
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
