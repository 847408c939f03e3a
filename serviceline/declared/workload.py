"""A declared line's workload: its owners' records added, changed and deleted at their rates."""

from __future__ import annotations

import bisect
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx

from serviceline.declared.records import change, key_of, new_record
from serviceline.declared.spec import EntitySpec, LineSpec
from serviceline.runtime.upstream import bearer

SCALED = re.compile(r"^x(\d+(\.\d+)?)$")


@dataclass(frozen=True)
class ChangeWorkload:
    scale: float

    @classmethod
    def named(cls, source: str) -> ChangeWorkload:
        """`default`, or `x0.1` for a tenth of every rate; ValueError names the field."""
        if source == "default":
            return cls(1.0)
        scaled = SCALED.match(source)
        if scaled is None:
            raise ValueError(
                f"workload: {source!r}: a declared line runs `default` or a scale of it, "
                "such as `x0.1`"
            )
        return cls(float(scaled.group(1)))


@dataclass(frozen=True, order=True)
class Planned:
    at: datetime
    seq: int
    entity: str
    op: str


class Changes:
    """Performs the workload's writes through the owners' APIs, each at its simulated moment."""

    def __init__(
        self,
        spec: LineSpec,
        workload: ChangeWorkload,
        clients: Mapping[str, httpx.AsyncClient],
        api_token: str,
        *,
        seed: int,
        start: datetime,
        end: datetime,
    ) -> None:
        self.spec, self.workload, self.clients = spec, workload, clients
        self.start, self.end = start, end
        self.headers = bearer(api_token)
        self.seed = seed
        self.rng = random.Random(f"changes of {seed}")
        self.keys: dict[str, list[str]] = {}
        self.numbers: dict[str, int] = {}
        self.due: list[Planned] = []
        self.done = 0  # how many of `due` have been performed
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    async def prepare(self) -> None:
        """Read the keys each owner holds, then draw every write of the span."""
        entities = [e for e in self.spec.entities if e.owner in self.clients]
        for entity in entities:
            self.keys[entity.name] = await self._keys(entity)
            self.numbers[entity.name] = len(self.keys[entity.name])
        self.due = self.plan([entity.name for entity in entities])

    def plan(self, entities: list[str]) -> list[Planned]:
        """Every write of the span to these entities, in time order, the same for a seed."""
        rng = random.Random(self.seed)
        days = (self.end - self.start).total_seconds() / 86_400
        due: list[Planned] = []
        for entity in map(self.spec.entity, entities):
            for _ in range(round(entity.changes_per_day * self.workload.scale * days)):
                at = self.start + (self.end - self.start) * rng.random()
                draw = rng.random()
                op = "create" if draw < entity.new_share else "update"
                if entity.new_share <= draw < entity.new_share + entity.delete_share:
                    op = "delete"
                due.append(Planned(at, len(due), entity.name, op))
        return sorted(due)

    async def _keys(self, entity: EntitySpec) -> list[str]:
        keys: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 5000}
            if after is not None:
                params["after"] = after
            response = await self.clients[entity.owner].get(
                entity.path, params=params, headers=self.headers
            )
            response.raise_for_status()
            page = [str(record[entity.key]) for record in response.json()]
            keys += page
            if len(page) < 5000:
                return keys
            after = page[-1]

    def next_at(self) -> datetime | None:
        return self.due[self.done].at if self.done < len(self.due) else None

    def _ready(self, moment: datetime) -> list[Planned]:
        end = bisect.bisect_right(self.due, moment, lo=self.done, key=lambda p: p.at)
        return self.due[self.done : end]

    def targets_at(self, moment: datetime) -> set[str]:
        return {self.spec.entity(planned.entity).owner for planned in self._ready(moment)}

    async def fire(self, moment: datetime) -> int:
        """Perform every write due by `moment`: how many were made or refused."""
        due = self._ready(moment)
        for planned in due:
            await self._perform(self.spec.entity(planned.entity), planned.op)
            self.done += 1
        return len(due)

    async def _perform(self, entity: EntitySpec, op: str) -> None:
        keys = self.keys[entity.name]
        client = self.clients[entity.owner]
        if op == "create" or not keys:
            self.numbers[entity.name] += 1
            record = new_record(entity, self.rng, self.numbers[entity.name])
            while record[entity.key] in keys:  # a key the line wrote itself, or a user's
                self.numbers[entity.name] += 1
                record[entity.key] = key_of(entity, self.numbers[entity.name])
            response = await client.post(entity.path, json=record, headers=self.headers)
            if response.is_success:
                keys.append(record[entity.key])
            self._count(f"{entity.name}.created", response)
            return
        key = self.rng.choice(keys)
        if op == "delete":
            response = await client.delete(f"{entity.path}/{key}", headers=self.headers)
            if response.is_success:
                keys.remove(key)
            self._count(f"{entity.name}.deleted", response)
            return
        body = change(entity, self.rng)
        response = await client.patch(f"{entity.path}/{key}", json=body, headers=self.headers)
        self._count(f"{entity.name}.changed", response)

    def _count(self, what: str, response: httpx.Response) -> None:
        (self.counts if response.is_success else self.failures)[what] += 1
