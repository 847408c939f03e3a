"""A line from its file: the topology, a generic owner or consumer for each service, a seed."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import httpx

from serviceline.consumer.tables import CopyTarget
from serviceline.declared.records import key_of, new_record
from serviceline.declared.routes import entity_router
from serviceline.declared.spec import LineFileError, LineSpec, read_spec
from serviceline.declared.tables import TableTakenError, copy_table, owned_table
from serviceline.declared.workload import Changes, ChangeWorkload
from serviceline.model.lines import Line, Progress, Size
from serviceline.model.topology import Edge, Entity, Scope, Service, Topology
from serviceline.runtime.app import ServiceApp
from serviceline.runtime.upstream import bearer
from serviceline.stack.control import LineControl

# how many records a seed writes at each size, per record an entity declares for `small`
SCALES = {Size.SMALL: 1, Size.MEDIUM: 10, Size.LARGE: 100}
BATCH = 1000


def topology_of(spec: LineSpec) -> Topology:
    services = tuple(Service(s.name, s.title, s.kind, s.port) for s in spec.services)
    entities = tuple(
        Entity(e.name, (e.owner,), e.key, e.description, personal=e.personal) for e in spec.entities
    )
    edges = tuple(
        Edge(
            spec.entity(e.entity).owner,
            e.consumer,
            e.entity,
            e.mechanism,
            e.schedule,
            spec.mapping(e),
            scope=Scope(
                include={k: frozenset(v) for k, v in e.scope.include.items()},
                exclude={k: frozenset(v) for k, v in e.scope.exclude.items()},
                description=e.scope.description or "every record",
            ),
            policy=e.policy,
            editable=frozenset(e.editable),
            full_sync_schedule=e.full_sync_schedule,
            description=e.description,
        )
        for e in spec.edges
    )
    return Topology(services, entities, (), edges, (), title=spec.title)


def services_of(spec: LineSpec) -> tuple[ServiceApp, ...]:
    declared = []
    for service in spec.services:
        owned = [e for e in spec.entities if e.owner == service.name]
        tables = {e.name: owned_table(e) for e in owned}
        copies = {
            e.entity: CopyTarget(copy_table(spec, e))
            for e in spec.edges
            if e.consumer == service.name
        }
        routers = [entity_router(e, tables[e.name], personal=e.personal) for e in owned]
        declared.append(
            ServiceApp(
                name=service.name, routers=routers, tables=list(tables.values()), copies=copies
            )
        )
    return tuple(declared)


class Seeder:
    """Writes each entity's records through its owner's batch API, then copies them everywhere."""

    def __init__(self, spec: LineSpec) -> None:
        self.spec = spec

    async def __call__(
        self,
        clients: dict[str, httpx.AsyncClient],
        control: LineControl,
        api_token: str,
        size: Size = Size.SMALL,
        seed: int = 1,
        progress: Progress | None = None,
    ) -> dict[str, int]:
        rng = random.Random(seed)
        headers = bearer(api_token)
        counts: dict[str, int] = {}
        for entity in self.spec.entities:
            total = entity.seed * SCALES[size]
            records = [new_record(entity, rng, number) for number in range(1, total + 1)]
            for start in range(0, total, BATCH):
                response = await clients[entity.owner].post(
                    f"{entity.path}/batch", json=records[start : start + BATCH], headers=headers
                )
                if response.status_code >= 400:
                    raise RuntimeError(
                        f"seeding {entity.owner} {entity.path}: {response.status_code} "
                        f"{response.text[:500]}"
                    )
                if progress is not None:
                    progress(f"{entity.name}s", min(start + BATCH, total), total)
            counts[f"{entity.name}s"] = total
        await control.sync()
        return counts

    async def already_seeded(
        self, clients: Mapping[str, httpx.AsyncClient], api_token: str
    ) -> bool:
        # the seed's own first record, by its key: records a scenario wrote are not a seed
        first = self.spec.entities[0]
        response = await clients[first.owner].get(
            f"{first.path}/{key_of(first, 1)}", headers=bearer(api_token)
        )
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True


class DeclaredWorkloads:
    """`default`: each entity changed at the rate its file gives; `xF` scales every rate."""

    def __init__(self, spec: LineSpec) -> None:
        self.spec = spec

    def check(self, source: str) -> None:
        ChangeWorkload.named(source)

    def events(
        self,
        source: str,
        clients: Mapping[str, httpx.AsyncClient],
        api_token: str,
        *,
        seed: int,
        start: datetime,
        end: datetime,
    ) -> Changes:
        workload = ChangeWorkload.named(source)
        return Changes(self.spec, workload, clients, api_token, seed=seed, start=start, end=end)


def declared_line(path: Path) -> Line:
    spec = read_spec(path)
    seeder = Seeder(spec)
    try:
        services = services_of(spec)
    except TableTakenError as error:
        raise LineFileError(f"{path}: services: {error}; name the service another way") from error
    return Line(
        topology=topology_of(spec),
        services=services,
        seed=seeder,
        already_seeded=seeder.already_seeded,
        workloads=DeclaredWorkloads(spec),
        seeded=sorted({entity.owner for entity in spec.entities}),
    )
