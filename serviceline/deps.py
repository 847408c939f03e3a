"""What a request can ask the kernel for: the session, the clock, upstream clients, auth."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from anyio import to_thread
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from serviceline.clock import SimulatedClock
from serviceline.copier import Copier
from serviceline.db import readonly
from serviceline.faults import Faults
from serviceline.feed import FeedNotifier, Owned, attach
from serviceline.scheduler import Scheduler
from serviceline.settings import ServiceSettings
from serviceline.topology import Topology
from serviceline.upstream import Upstream


@dataclass
class Kernel:
    """Everything a running service holds, created in its lifespan."""

    name: str
    settings: ServiceSettings
    topology: Topology
    engine: Engine
    clock: SimulatedClock
    notifier: FeedNotifier
    upstreams: Mapping[str, Upstream]
    owned: Mapping[str, type[Owned]]
    copier: Copier
    scheduler: Scheduler
    faults: Faults
    # one write request at a time in this process: the database would serialise them anyway
    writers: anyio.Lock = field(default_factory=anyio.Lock)

    def session(self, *, writes: bool = True) -> Session:
        """A session on this service's database; one that `writes` holds the write lock."""
        engine = self.engine if writes else readonly(self.engine)
        # a record handed back after the commit says what this transaction wrote, not what a
        # writer that came after it made of it
        return attach(Session(engine, expire_on_commit=False), self.clock, self.notifier)


def get_kernel(request: Request) -> Kernel:
    kernel: Kernel = request.app.state.kernel
    return kernel


KernelDep = Annotated[Kernel, Depends(get_kernel)]


READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(kernel: KernelDep, request: Request) -> AsyncIterator[Session]:
    """The request's session, committed once its handler returns.

    Writers queue here for their turn rather than in the database, so a hundred requests
    waiting to write hold no worker thread and no connection while one writes.
    """
    writes = request.method not in READING_METHODS
    async with kernel.writers if writes else contextlib.nullcontext():
        session = kernel.session(writes=writes)
        try:
            yield session
            await to_thread.run_sync(session.commit)
        finally:
            await to_thread.run_sync(session.close)


# "function" scope commits before the response is sent: a client holding its 201 can read the change
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_clock(kernel: KernelDep) -> SimulatedClock:
    return kernel.clock


ClockDep = Annotated[SimulatedClock, Depends(get_clock)]


def get_upstreams(kernel: KernelDep) -> Mapping[str, Upstream]:
    return kernel.upstreams


UpstreamsDep = Annotated[Mapping[str, Upstream], Depends(get_upstreams)]

_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _check(credentials: HTTPAuthorizationCredentials | None, expected: str, what: str) -> None:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"{what} needs 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"that token is not valid for {what}")


def require_admin(kernel: KernelDep, credentials: BearerDep) -> None:
    _check(credentials, kernel.settings.admin_token, "the admin API")


def require_api_token(kernel: KernelDep, credentials: BearerDep) -> None:
    """The operator's token, or one a calling service holds for a command path."""
    what = f"{kernel.name}'s write API"
    if credentials is None:
        _check(credentials, kernel.settings.api_token, what)
        return
    accepted = [kernel.settings.api_token, *kernel.settings.api_clients.values()]
    if not any(secrets.compare_digest(credentials.credentials, token) for token in accepted):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"that token is not valid for {what}")


AdminAuth = Depends(require_admin)
ApiAuth = Depends(require_api_token)
