"""The dashboard's page of one record followed through the line: a waterfall across its copies."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from serviceline.audit.lag import LagCollector, Outcome
from serviceline.audit.trace import Hop, Trace, collect_trace
from serviceline.dashboard.board import FAILURES, Board
from serviceline.runtime.upstream import bearer


@dataclass(frozen=True)
class Bar:
    """One stretch of a waterfall row: what was held, from `left` for `width` (% of the span)."""

    left: float
    width: float
    label: str
    kind: str  # version, waiting, gone
    title: str


@dataclass
class Tracer:
    """One collector for every trace the dashboard draws: each pulls only the logs' new rows."""

    collector: LagCollector | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def trace(self, board: Board, entity: str, key: str) -> Trace:
        async with self._lock:
            if self.collector is None:
                self.collector = LagCollector(board.control())
            self.collector.control = board.control()  # the services answering now
            reading = bearer(board.settings.auditor_token)
            return await collect_trace(self.collector, entity, key, reading)


def owner_bars(found: Trace, start: datetime) -> list[Bar]:
    changes = list(found.versions)
    ends = [c.changed_at for c in changes[1:]] + [found.at][: len(changes)]
    return [
        _bar(start, found.at, c.changed_at, end, f"v{c.version}", _kind(c.op), f"{c.op}")
        for c, end in zip(changes, ends, strict=True)
    ]


def hop_bars(hop: Hop, start: datetime, at: datetime) -> list[Bar]:
    held = list(hop.held)
    ends = [h.since for h in held[1:]] + [at][: len(held)]
    return [
        _bar(
            start,
            at,
            h.since,
            end,
            f"v{h.version}" if h.op == "upsert" else h.op,
            _kind(h.op),
            h.op,
        )
        for h, end in zip(held, ends, strict=True)
    ]


def wait_bars(hop: Hop, start: datetime, at: datetime) -> list[Bar]:
    """Each version from its writing to its arrival (or now, still waiting)."""
    return [
        _bar(
            start,
            at,
            a.change.changed_at,
            a.arrived_at or at,
            f"v{a.change.version}",
            "waiting",
            a.words(),
        )
        for a in hop.arrivals
        if a.outcome in (Outcome.DELIVERED, Outcome.PENDING)
    ]


def _kind(op: str) -> str:
    return "version" if op == "upsert" else "gone"


def _bar(
    start: datetime, at: datetime, begin: datetime, end: datetime, label: str, kind: str, op: str
) -> Bar:
    span = max((at - start).total_seconds(), 1.0)
    left = (begin - start).total_seconds() / span * 100
    width = max((end - begin).total_seconds() / span * 100, 0.0)
    title = f"{label}: {op}, {begin:%a %d %b %H:%M} to {end:%H:%M}"
    return Bar(round(left, 3), round(width, 3), label, kind, title)


def get_board(request: Request) -> Board:
    board: Board = request.app.state.board
    return board


BoardDep = Annotated[Board, Depends(get_board)]


def trace_router(templates: Jinja2Templates) -> APIRouter:
    router = APIRouter()
    tracer = Tracer()

    @router.get("/trace", response_class=HTMLResponse)
    async def read_trace(
        request: Request,
        board: BoardDep,
        entity: Annotated[str, Query(description="the record's entity, e.g. course")] = "course",
        key: Annotated[str | None, Query(description="its key at the owner")] = None,
    ) -> HTMLResponse:
        """One record: its versions at the owner, and which version each copy held when."""
        topology = board.topology
        if entity not in {e.name for e in topology.entities}:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"entity: no entity named {entity!r}"
            )
        context: dict[str, Any] = {"topology": topology, "entity": entity, "key": key or ""}
        code = status.HTTP_200_OK
        if key:
            try:
                found = await tracer.trace(board, entity, key)
            except FAILURES as error:
                context["problem"] = f"the line could not be read: {error}"
            else:
                context.update(_drawn(found))
                if not found.versions:
                    code = status.HTTP_404_NOT_FOUND
        return templates.TemplateResponse(request, "trace.html", context, status_code=code)

    return router


def _drawn(found: Trace) -> dict[str, Any]:
    start = found.versions[0].changed_at if found.versions else found.at
    for hop in found.hops:
        start = min([start, *(h.since for h in hop.held)])
    return {
        "trace": found,
        "owner_bars": owner_bars(found, start),
        "hop_bars": {hop.edge.name: hop_bars(hop, start, found.at) for hop in found.hops},
        "start": start,
        "wait_bars": {hop.edge.name: wait_bars(hop, start, found.at) for hop in found.hops},
        "ticks": [(n * 25, start + (found.at - start) * n / 4) for n in range(5)],
    }
