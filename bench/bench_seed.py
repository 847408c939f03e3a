"""Seeding a whole line over real HTTP: where the time goes, owner by owner.

A line of real processes (every service but the record systems) on free loopback ports is
seeded as `serviceline seed --size SIZE` seeds it. Every request the seed makes is timed on its
way through the client: each owner's batch endpoint (the records it was sent, the seconds its
requests took), the other writes (single records, commands, TRN requests), and the copies run
between them (the admin API). Each batch endpoint's rate is set beside a raw insert of the rows
its table holds afterwards into a fresh SQLite file in one transaction (executemany), the
fastest of three, as bench_copy.py measures Publish's courses.
Run: .venv/bin/python bench/bench_seed.py [--sizes small medium] [--large]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_copy import raw_insert

from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.topology import LINE
from serviceline.model.lines import Size
from serviceline.model.topology import Kind
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import LineConfig, free_port_offset, start_line

ADMIN_TOKEN, API_TOKEN = "bench-admin", "bench-api"
# each batch endpoint the seed writes through, and the table its records land in
TABLES = {
    ("gias", "/schools/batch"): "gias_school",
    ("publish", "/providers/batch"): "publish_provider",
    ("publish", "/sites/batch"): "publish_site",
    ("publish", "/courses/batch"): "publish_course",
    ("apply", "/candidates/batch"): "apply_candidate",
    ("apply", "/applications/batch"): "apply_application",
    ("hesa", "/apis/itt/1.1/students/batch"): "hesa_itt_record",
    ("dqt", "/v3/teachers/batch"): "dqt_teacher",
    ("placements", "/mentors/batch"): "placements_mentor",
    ("placements", "/partnerships/batch"): "placements_school_partnership",
    ("placements", "/placements/batch"): "placements_placement",
    ("claims", "/mentors/batch"): "claims_mentor",
    ("claims", "/claims/batch"): "claims_claim",
}
COPIES = "copies and jobs (admin API)"
OTHER = "other writes"


@dataclass
class Spent:
    requests: int = 0
    records: int = 0
    seconds: float = 0.0


@dataclass
class Timings:
    """Seconds spent in each service's requests, by the endpoint they went to."""

    spent: dict[tuple[str, str], Spent] = field(default_factory=lambda: defaultdict(Spent))

    def add(self, service: str, request: httpx.Request, seconds: float) -> None:
        path = request.url.path
        if path.startswith("/admin/"):
            key = (service, COPIES)
        elif (service, path) in TABLES:
            key = (service, path)
        elif request.method == "GET":
            key = (service, "reads")
        else:
            key = (service, OTHER)
        spent = self.spent[key]
        spent.requests += 1
        spent.seconds += seconds
        if key[1] == path and request.content:
            body = json.loads(request.content)
            spent.records += len(body) if isinstance(body, list) else 1


class TimedTransport(httpx.AsyncBaseTransport):
    """The default transport, each request timed from sending until its body has arrived."""

    def __init__(self, service: str, timings: Timings) -> None:
        self.service = service
        self.timings = timings
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.timings.add(self.service, request, time.perf_counter() - started)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(frozen=True)
class Seeded:
    size: Size
    seconds: float
    counts: dict[str, int]
    timings: Timings
    # raw insert seconds of each batch endpoint's table, with the rows it holds
    raw: dict[tuple[str, str], tuple[int, float]]


async def seed(folder: Path, size: Size) -> tuple[float, dict[str, int], Timings]:
    names = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM]
    config = LineConfig(
        folder, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=free_port_offset()
    )
    running = start_line(config, names, topology=LINE)
    timings = Timings()
    try:
        clients = {
            name: httpx.AsyncClient(
                base_url=url, timeout=3600, transport=TimedTransport(name, timings)
            )
            for name, url in running.urls().items()
        }
        started = time.perf_counter()
        counts = await seed_line(clients, LineControl(clients, ADMIN_TOKEN, LINE), API_TOKEN, size)
        seconds = time.perf_counter() - started
        for client in clients.values():
            await client.aclose()
        return seconds, counts, timings
    finally:
        running.stop()


def measure(size: Size) -> Seeded:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seconds, counts, timings = asyncio.run(seed(folder / "line", size))
        raw: dict[tuple[str, str], tuple[int, float]] = {}
        for n, ((service, path), table) in enumerate(TABLES.items()):
            if (service, path) in timings.spent:
                database = folder / "line" / f"{service}.db"
                with sqlite3.connect(database) as connection:
                    (rows,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
                raw[(service, path)] = (rows, raw_insert(database, table, folder / f"raw-{n}.db"))
        return Seeded(size, seconds, counts, timings, raw)


def table(seeded: Seeded) -> None:
    load = os.getloadavg()
    print(
        f"seed --size {seeded.size.value}: {seeded.seconds:.1f} s in all;"
        f" load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"{'owner':<11} {'endpoint':<32} {'requests':>8} {'records':>8} {'seconds':>8}"
        f" {'records/s':>10} {'raw/s':>10} {'ratio':>7}"
    )
    spent = seeded.timings.spent
    for (service, path), s in sorted(spent.items(), key=lambda item: -item[1].seconds):
        line = f"{service:<11} {path:<32} {s.requests:>8,} "
        if (service, path) in seeded.raw:
            rows, raw_seconds = seeded.raw[(service, path)]
            rate = s.records / s.seconds
            raw_rate = rows / raw_seconds
            line += (
                f"{s.records:>8,} {s.seconds:>8.2f} {rate:>10,.0f} {raw_rate:>10,.0f}"
                f" {rate / raw_rate:>6.3f}x"
            )
        else:
            line += f"{'':>8} {s.seconds:>8.2f}"
        print(line)
    batch = [s for key, s in spent.items() if key in seeded.raw]
    records, seconds = sum(s.records for s in batch), sum(s.seconds for s in batch)
    print(
        f"{'all':<11} {'batch endpoints':<32} {sum(s.requests for s in batch):>8,}"
        f" {records:>8,} {seconds:>8.2f} {records / seconds:>10,.0f}"
    )
    print("ratio: records a second through the endpoint over a raw insert of the rows it stored")
    print("seconds add up over requests in flight together (decisions, TRN requests)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", nargs="*", type=Size, default=[Size.SMALL, Size.MEDIUM], help="sizes to seed"
    )
    parser.add_argument("--large", action="store_true", help="seed large too: several minutes")
    args = parser.parse_args()
    sizes: list[Size] = list(args.sizes) + ([Size.LARGE] if args.large else [])
    for size in dict.fromkeys(sizes):
        table(measure(size))


if __name__ == "__main__":
    main()
