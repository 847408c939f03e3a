"""Apply's provider-tree walk over a real Publish: asking everything, against known answers.

A Publish process on a free loopback port holds providers, each with sites and courses at some
of them. Apply's walk (SyncAllProvidersAndCourses, SyncCourses, SyncSites) lists every provider
and reads each one's courses and their locations, as a run of the 2-hour overlap does when all
of them changed in the window. Before each round a share of the providers changes, one event
each drawn by the default workload's volumes (mostly course edits), and the walk runs three
ways: asking everything; taking a provider's answers while nothing of it changed (the provider
grain); taking a course list while none of its courses changed and a course's locations while
neither it nor its provider's sites did (serviceline.consumer.known_walks, the course grain).
Each row gives the requests really made and taken as known, per walk, and the wall time of a walk
set beside asking everything; the log column is the simulation's own reads of Publish's change log,
no request of the run. Every way counts the same requests and bytes to its run.
Run: .venv/bin/python bench/bench_known_walks.py [--providers N] [--courses N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_copy import ADMIN_TOKEN, API, code, line

from lines.becoming_a_teacher.publish_api import (
    PUBLISH_V1_KEYS,
    KnownSubtrees,
    Located,
    PublishV1ProviderTreeReader,
)
from serviceline.consumer.readers import Walked
from serviceline.runtime.upstream import Upstream
from tests import builders

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ENTITIES = ("provider", "course", "site")
SITES = 5
SHARES = (0.05, 0.2, 0.5, 1.0)
# the default workload's Publish volumes a cycle (lines/becoming_a_teacher/workload/default.yaml)
EVENTS = {
    "course_edited": 60000,
    "course_withdrawn": 1500,
    "site_edited": 2000,
    "site_added": 1000,
    "provider_edited": 2000,
}


@dataclass
class ProviderGrain(KnownSubtrees):
    """The grain before: a provider's answers only while nothing of it changed."""

    # provider -> the seq of the latest change to it, its courses or its sites
    _quiet_since: dict[str, int] = field(default_factory=dict)

    def listing(self, provider: str) -> Walked | None:
        held = self._listings.get(provider)
        return super().listing(provider) if held and self._quiet(provider, held[0]) else None

    def locations(self, provider: str, course: str) -> Located | None:
        held = self._locations.get(course)
        quiet = held and self._quiet(provider, held[0])
        return super().locations(provider, course) if quiet else None

    def _quiet(self, provider: str, read_at: int) -> bool:
        return self._quiet_since.get(provider, -1) <= read_at

    def _touch(self, entity: str, change: Mapping[str, Any]) -> None:
        super()._touch(entity, change)
        key = str(change["key"])
        provider = key if entity == "provider" else self._providers_of.get((entity, key))
        if provider is not None:
            seq = int(change["seq"])
            self._quiet_since[provider] = max(self._quiet_since.get(provider, -1), seq)


@dataclass
class Publish:
    """What the bench wrote to Publish, to change it by."""

    client: httpx.AsyncClient
    courses: dict[str, list[str]]
    sites: dict[str, list[str]]
    rng: random.Random

    async def change(self, provider: str) -> None:
        [event] = self.rng.choices(list(EVENTS), weights=list(EVENTS.values()))
        course = self.rng.choice(self.courses[provider])
        site = self.rng.choice(self.sites[provider])
        if event == "course_edited":
            body: dict[str, Any] = self.rng.choice(
                [{"name": f"Art {self.rng.random():.6f}"}, {"site_codes": self._codes()}]
            )
            await self.send("PATCH", f"/courses/{course}", body)
        elif event == "course_withdrawn":
            await self.send("PATCH", f"/courses/{course}", {"state": "withdrawn"})
        elif event == "site_edited":
            await self.send("PATCH", f"/sites/{site}", {"name": f"School {self.rng.random()}"})
        elif event == "site_added":
            made = await self.send(
                "POST",
                f"/providers/{provider}/sites",
                builders.site(code(len(self.sites[provider]), 5)),
            )
            self.sites[provider].append(made["uuid"])
        else:
            await self.send("PATCH", f"/providers/{provider}", {"name": f"P {self.rng.random()}"})

    def _codes(self) -> list[str]:
        return sorted(self.rng.sample([code(n, 1) for n in range(SITES)], 2))

    async def send(self, method: str, path: str, body: Any) -> Any:
        response = await self.client.request(method, path, json=body, headers=API)
        assert response.is_success, response.text
        return response.json()


async def seed(client: httpx.AsyncClient, providers: int, courses: int) -> Publish:
    rng = random.Random(1)
    codes = [code(n, 3) for n in range(providers)]
    body = [builders.provider(p, name=f"Provider {p}") for p in codes]
    assert (await client.post("/providers/batch", json=body, headers=API)).is_success
    seeded = Publish(client, {}, {}, rng)
    for provider in codes:
        sites = [builders.site(code(n, 1)) for n in range(SITES)]
        made = await seeded.send("POST", f"/providers/{provider}/sites/batch", sites)
        seeded.sites[provider] = [site["uuid"] for site in made]
        written = [
            builders.course(code(n, 4), site_codes=seeded._codes(), state=state)
            for n in range(courses)
            for state in [rng.choice(("published",) * 9 + ("draft",))]
        ]
        made = await seeded.send("POST", f"/providers/{provider}/courses/batch", written)
        seeded.courses[provider] = [course["uuid"] for course in made]
    return seeded


@dataclass
class Way:
    name: str
    known: KnownSubtrees | None
    # the run's requests really made, and the simulation's own reads of the owner's log
    made: list[int] = field(default_factory=list)
    log: list[int] = field(default_factory=list)
    counted: list[tuple[int, int]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


async def walk(upstream: Upstream, way: Way, head: int, log: list[str]) -> None:
    if way.known is not None:
        way.known.head = head
    tree = PublishV1ProviderTreeReader(upstream, "site", PUBLISH_V1_KEYS, 2027, known=way.known)
    before, logged = upstream.requests, len(log)
    began = time.perf_counter()
    walked = [w async for w in tree.walk(None, ENTITIES)]
    way.seconds.append(time.perf_counter() - began)
    way.log.append(len(log) - logged)
    way.made.append(upstream.requests - before - way.log[-1])
    spent = (sum(w.traffic.requests for w in walked), sum(w.traffic.bytes for w in walked))
    way.counted.append(spent)


async def owner_head(client: httpx.AsyncClient) -> int:
    head: int = (await client.get("/admin/clock", headers=ADMIN)).json()["head"]
    return head


async def measure(url: str, providers: int, courses: int, rounds: int) -> None:
    log: list[str] = []

    async def read(request: httpx.Request) -> None:
        if request.url.path.startswith("/feed/"):
            log.append(request.url.path)

    hooks = {"request": [read]}
    async with httpx.AsyncClient(base_url=url, timeout=3600, event_hooks=hooks) as client:
        publish = await seed(client, providers, courses)
        upstream = Upstream("publish", client)
        print(f"{providers} providers, {courses} courses and {SITES} sites each; {rounds} rounds")
        print(
            f"{'changed':>8}  {'grain':<10}{'made':>7}{'known':>7}{'log':>5}"
            f"{'made/counted':>14}{'seconds':>9}{'time/ask all':>14}"
        )
        for share in SHARES:
            ways = [
                Way("ask all", None),
                Way("provider", ProviderGrain()),
                Way("course", KnownSubtrees()),
            ]
            head = await owner_head(client)
            for way in ways:  # the first walk of each way reads what it will know
                await walk(upstream, way, head, log)
            for number in range(rounds):
                for provider in publish.rng.sample(sorted(publish.courses), int(share * providers)):
                    await publish.change(provider)
                head = await owner_head(client)
                # each round in another order: a busy moment of the machine falls on all alike
                for way in ways[number % 3 :] + ways[: number % 3]:
                    await walk(upstream, way, head, log)
            asked = ways[0]
            for way in ways:
                assert way.counted[1:] == asked.counted[1:], way.name  # the same cost counted
                made = statistics.median(way.made[1:])
                logged = statistics.median(way.log[1:])
                counted = statistics.median(c for c, _ in way.counted[1:])
                seconds = statistics.median(way.seconds[1:])
                ratio = seconds / statistics.median(asked.seconds[1:])
                print(
                    f"{share:>8.0%}  {way.name:<10}{made:>7.0f}{counted - made:>7.0f}"
                    f"{logged:>5.0f}{made / counted:>14.3f}{seconds:>9.3f}{ratio:>14.3f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--courses", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        running = line(Path(folder) / "line", ["publish"])
        try:
            asyncio.run(
                measure(running.urls()["publish"], args.providers, args.courses, args.rounds)
            )
        finally:
            running.stop()


if __name__ == "__main__":
    main()
