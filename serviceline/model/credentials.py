"""Who may call what: every credential the line issues, derived from the topology, and the rules
routes check them against."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import HTTPException, status

from serviceline.model.topology import Reader, Topology
from serviceline.runtime.settings import ServiceSettings

ADMIN = "admin"  # moves the clock, runs jobs, sets faults: /admin only
OPERATOR = "operator"  # the service's own staff: its own API and everything it holds
AUDITOR = "auditor"  # the drift auditor and the dashboard: reads everything, writes nothing
# the auditor reads an owner as the named consumer reads it: with the consumer's grants and scope
AUDIT_FOR = "X-Audit-For"


def credential(holder: str, target: str) -> str:
    """The token `holder` presents to `target` unless settings name another."""
    return f"{holder}-{target}-token"


def presented(holder: str, target: str, tokens: Mapping[str, str]) -> str:
    """The token `holder` presents to `target`: the one its settings name, or the derived one."""
    return tokens.get(target, credential(holder, target))


def clients_of(topology: Topology, service: str) -> tuple[str, ...]:
    """The services holding a credential for `service`: its consumers and its command callers."""
    names = {edge.consumer for edge in topology.edges_from(service)}
    names |= {path.caller for path in topology.commands if path.target == service}
    return tuple(s.name for s in topology.services if s.name in names)


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: admin, operator, auditor or a service of the line."""

    name: str
    # the auditor reading as a consumer: that consumer's reads, never its commands
    audited: bool = False


@dataclass(frozen=True)
class Rule:
    """Who may call one route. The operator unless `operator` is off; the auditor on reads."""

    what: str
    operator: bool = True
    auditor: bool = True
    # services with a command path into this one
    commands: bool = False
    # services whose edges copy this entity through this API
    reads: tuple[str, Reader] | None = None
    admin: bool = False


OPEN = None  # a route anyone may call: health, docs, public reference data


@dataclass(frozen=True)
class Credentials:
    """The tokens one service accepts, and what each of its client services' tokens reaches."""

    service: str
    tokens: Mapping[str, str]  # token -> principal name
    reads: Mapping[str, frozenset[tuple[str, Reader]]] = field(default_factory=dict)
    commands: frozenset[str] = frozenset()

    @classmethod
    def derive(cls, service: str, topology: Topology, settings: ServiceSettings) -> Credentials:
        """From the topology: each consumer reads what its edges copy, each caller commands."""
        tokens = {
            settings.admin_token: ADMIN,
            settings.api_token: OPERATOR,
            settings.auditor_token: AUDITOR,
        }
        for client in clients_of(topology, service):
            tokens[settings.api_clients.get(client, credential(client, service))] = client
        reads: dict[str, set[tuple[str, Reader]]] = {}
        for edge in topology.edges_from(service):
            reads.setdefault(edge.consumer, set()).add((edge.entity, edge.reader))
        callers = {path.caller for path in topology.commands if path.target == service}
        return cls(
            service,
            tokens,
            {name: frozenset(grants) for name, grants in reads.items()},
            frozenset(callers),
        )

    def identify(self, token: str) -> str | None:
        found = None
        for known, name in self.tokens.items():
            if secrets.compare_digest(token.encode(), known.encode()):
                found = name
        return found

    def authorize(
        self, token: str | None, rule: Rule, *, writes: bool, audit_for: str | None = None
    ) -> Principal:
        """The caller, if `rule` lets it in; 401 without a token, 403 with one it does not."""
        if token is None:
            raise CredentialError(
                status.HTTP_401_UNAUTHORIZED,
                f"{rule.what} needs 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        name = self.identify(token)
        principal = Principal(name or "")
        if name == AUDITOR and audit_for is not None and not writes:
            principal = Principal(audit_for, audited=True)
        if name is None or not self.allows(principal, rule, writes=writes):
            raise CredentialError(
                status.HTTP_403_FORBIDDEN, f"that token is not valid for {rule.what}"
            )
        return principal

    def allows(self, principal: Principal, rule: Rule, *, writes: bool) -> bool:
        name = principal.name
        if principal.audited:
            return rule.reads is not None and rule.reads in self.reads.get(name, frozenset())
        if name == ADMIN:
            return rule.admin
        if name == OPERATOR:
            return rule.operator
        if name == AUDITOR:
            return rule.auditor and not writes
        if rule.commands and name in self.commands:
            return True
        return rule.reads is not None and rule.reads in self.reads.get(name, frozenset())


class CredentialError(HTTPException):
    """A refused credential: APIs with their own error shapes answer it in theirs."""
