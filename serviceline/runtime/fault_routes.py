"""/admin/faults on every service, and the middleware through which its server misbehaves."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import partial

import httpx
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from sqlmodel import Session, col, select
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serviceline.model.topology import Mechanism
from serviceline.runtime.deps import AdminAuth, Kernel, KernelDep, SessionDep
from serviceline.runtime.faults import (
    SERVER_FAULTS,
    STORAGE_FAULTS,
    Fault,
    FaultKind,
    FaultSpec,
    FaultWindow,
    close_windows,
    open_window,
)
from serviceline.runtime.upstream import bearer

log = logging.getLogger("serviceline.runtime.faults")
fault_router = APIRouter(prefix="/admin/faults", tags=["admin"], dependencies=[AdminAuth])


class FaultWindowView(BaseModel):
    kind: FaultKind
    edge: str | None
    began_at: datetime
    until: datetime | None  # None: still set, until cleared


@fault_router.post("", status_code=status.HTTP_201_CREATED)
def create_fault(body: FaultSpec, kernel: KernelDep) -> Fault:
    _check_edge(kernel, body)
    # logged in a transaction of its own, before the fault acts: a storage fault refuses writes
    with Session(kernel.engine) as session:
        fault = kernel.faults.add(body, log=partial(open_window, session))
        session.commit()
    return fault


@fault_router.get("")
def list_faults(kernel: KernelDep) -> list[Fault]:
    return kernel.faults.listed()


@fault_router.get("/windows")
def list_fault_windows(session: SessionDep) -> list[FaultWindowView]:
    """Every fault set on this service so far, cleared ones too, and when each acted."""
    rows = session.exec(select(FaultWindow).order_by(col(FaultWindow.id)))
    return [FaultWindowView.model_validate(row, from_attributes=True) for row in rows]


@fault_router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def delete_faults(kernel: KernelDep) -> None:
    kernel.faults.clear()
    # a transaction begun once the faults are gone: one begun before met a read-only database
    with Session(kernel.engine) as session:
        close_windows(session, kernel.clock.now())
        session.commit()


def _check_edge(kernel: Kernel, spec: FaultSpec) -> None:
    """Page faults act on this service's copier, on an edge it reads in pages."""
    edges = kernel.copier.edges
    paged = sorted(name for name, edge in edges.items() if edge.mechanism is not Mechanism.EVENT)
    if spec.kind in SERVER_FAULTS | STORAGE_FAULTS:
        if spec.edge is not None:
            raise _refused(f"edge: a {spec.kind.value} fault acts on {kernel.name} as a whole")
        if spec.kind is FaultKind.DISK_FULL and kernel.engine.dialect.name != "sqlite":
            raise _refused("kind: disk_full fills a SQLite database; this one is not SQLite")
        return
    if not paged:
        raise _refused(
            f"kind: {kernel.name} reads no pages from any owner, so {spec.kind.value} has "
            "nothing to act on; set it on a consumer"
        )
    if spec.edge is None:
        return
    edge = edges.get(spec.edge)
    if edge is None:
        raise _refused(f"edge: {kernel.name} reads no edge {spec.edge!r}; its edges: {paged}")
    if edge.mechanism is Mechanism.EVENT:
        raise _refused(
            f"edge: {spec.edge} is driven by {kernel.name}'s own events, not read in pages"
        )


def _refused(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


class FaultMiddleware:
    """Answers with a fail fault's status, or after a slow fault's wait: not /health or /admin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kernel = _misbehaving(scope)
        if kernel is not None:
            for fault in kernel.faults.take({FaultKind.SLOW}):
                await asyncio.sleep(fault.seconds)
            for fault in kernel.faults.take({FaultKind.FAIL}, first=True):
                detail = f"{kernel.name} is failing on purpose (fault {fault.id}: fail)"
                answer = JSONResponse({"detail": detail}, status_code=fault.status)
                await answer(scope, receive, send)
                return
            if scope["method"] == "GET":
                read = (scope["path"], _caller(kernel, scope))
                edits = kernel.faults.take({FaultKind.EDIT_MID_READ}, read=read)
                if edits:
                    await _edit_before_answering(kernel, edits, self.app, scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _edit_before_answering(
    kernel: Kernel, edits: list[Fault], app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer the read, make the edits, then let the answer leave: the next read sees them."""
    held: list[Message] = []

    async def hold(message: Message) -> None:
        held.append(message)

    await app(scope, receive, hold)
    operator = bearer(kernel.settings.api_token)
    transport = httpx.ASGITransport(app=scope["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://self") as client:
        for fault in edits:
            assert fault.write is not None
            write = fault.write
            answer = await client.request(
                write.method, write.path, json=write.body, headers=operator
            )
            if answer.is_error:
                log.warning(
                    "fault %d: %s %s answered %s",
                    fault.id,
                    write.method,
                    write.path,
                    answer.status_code,
                )
    for message in held:
        await send(message)


def _caller(kernel: Kernel, scope: Scope) -> str | None:
    """Who the request's token names: a service, the auditor, the operator, or None."""
    headers = dict(scope["headers"])
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return kernel.credentials.identify(token) if scheme.lower() == "bearer" else None


def _misbehaving(scope: Scope) -> Kernel | None:
    """The service's kernel, when this request is one its faults may act on."""
    if scope["type"] != "http" or scope["path"] == "/health" or scope["path"].startswith("/admin/"):
        return None
    kernel: Kernel | None = getattr(scope["app"].state, "kernel", None)
    return kernel
