"""What a request can ask the kernel for: the session, the clock, upstream clients, auth."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session

from serviceline.consumer.copier import Copier
from serviceline.model.credentials import AUDIT_FOR, Credentials, Principal, Rule
from serviceline.model.topology import Topology
from serviceline.owner.feed import FeedNotifier, Owned, attach
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import WriteMark, readonly
from serviceline.runtime.faults import Faults
from serviceline.runtime.scheduler import Scheduler
from serviceline.runtime.settings import ServiceSettings
from serviceline.runtime.upstream import Upstream
from serviceline.telemetry.tracing import Tracing


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
    credentials: Credentials
    writes: WriteMark
    # one write request at a time in this process: the database would serialise them anyway
    writers: anyio.Lock = field(default_factory=anyio.Lock)
    # None while the service does not trace
    tracing: Tracing | None = None

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


def authorize(kernel: Kernel, request: Request, bearer: BearerDep, rule: Rule) -> Principal:
    """The caller of this request, if `rule` lets it in (CredentialError otherwise)."""
    return kernel.credentials.authorize(
        bearer.credentials if bearer else None,
        rule,
        writes=request.method not in READING_METHODS,
        audit_for=request.headers.get(AUDIT_FOR),
    )


def guard(rule: Rule | None) -> Callable[..., Principal | None]:
    """A dependency letting in who `rule` names; None for a route anyone may call."""

    def check(kernel: KernelDep, request: Request, bearer: BearerDep) -> Principal | None:
        return None if rule is None else authorize(kernel, request, bearer, rule)

    return check


def personal(entity: str, rule: Rule, topology: Topology) -> Rule | None:
    """`rule` for a route serving `entity`, if the topology declares it personal; else open."""
    return rule if topology.entity(entity).personal else None


def require_admin(kernel: KernelDep, request: Request, bearer: BearerDep) -> None:
    """The admin token; the auditor's reads the clock, jobs, edges and faults too."""
    authorize(kernel, request, bearer, ADMIN_API)


ADMIN_API = Rule("the admin API", operator=False, admin=True)
# the service's own API: its operator, and the auditor on reads
OWN_API = Rule("this service's own API")
# a command path's endpoints: the operator and the services the topology lets call them
COMMAND_API = Rule("this command API", commands=True)

AdminAuth = Depends(require_admin)
ApiAuth = Depends(guard(OWN_API))
CommandAuth = Depends(guard(COMMAND_API))
