"""How soon a following consumer sees an owner's write, beside one loopback round trip.

Publish and Find as real processes on free loopback ports, on a realtime clock at one simulated
second a second, Find following both of Publish's feeds (`feed@follow`, no cron). Measured in
one run: a trivial GET to Publish (`/health`), the loopback round trip; one small SQLite commit
as the services make it (WAL, synchronous=NORMAL, a row and its log row); and, for each of N
renames of one course through Publish's API, the time from sending the PATCH to the first read
of Find's copy that carries the new name, reads made back to back. The target: three round
trips (the write, the feed's answer to the parked follower, the read that sees it) and two
commits (the owner's, the consumer's), each at its p99.
Run: .venv/bin/python bench/bench_follow.py [--writes N] [--round-trips N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lines.becoming_a_teacher.topology import LINE
from serviceline.runtime.db import make_engine
from serviceline.stack.launcher import LineConfig, free_port_offset, start_line
from tests import builders

ADMIN_TOKEN, API_TOKEN = "bench-admin", "bench-api"
API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FOLLOWED = {"publish.course.find": "feed@follow", "publish.provider.find": "feed@follow"}


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile: the value `share` of the samples are at or under."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 100))
    return ordered[int(rank) - 1]


def milliseconds(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]


async def round_trips(publish: httpx.AsyncClient, count: int) -> list[float]:
    spent = []
    for _ in range(count):
        started = time.perf_counter()
        answered = await publish.get("/health")
        spent.append(time.perf_counter() - started)
        assert answered.status_code == 200, answered.text
    return spent


def commits(folder: Path, count: int) -> list[float]:
    """One small transaction at a time, on a SQLite file opened as the services open theirs."""
    engine = make_engine(f"sqlite:///{folder / 'commits.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE copy (key TEXT PRIMARY KEY, name TEXT)"))
        connection.execute(text("CREATE TABLE applied (id INTEGER PRIMARY KEY, key TEXT)"))
    spent = []
    try:
        for n in range(count):
            started = time.perf_counter()
            with engine.begin() as connection:
                connection.execute(
                    text("INSERT OR REPLACE INTO copy VALUES (:key, :name)"),
                    {"key": "k", "name": f"name {n}"},
                )
                connection.execute(text("INSERT INTO applied (key) VALUES ('k')"))
            spent.append(time.perf_counter() - started)
    finally:
        engine.dispose()
    return spent


async def seen(find: httpx.AsyncClient, uuid: str, name: str, patience: float = 30.0) -> None:
    deadline = time.perf_counter() + patience
    while time.perf_counter() < deadline:
        response = await find.get(f"/copies/course/{uuid}")
        if response.status_code == 200 and response.json()["name"] == name:
            return
    raise RuntimeError(f"Find never showed {name!r} for {uuid}")


async def write_to_visible(
    publish: httpx.AsyncClient, find: httpx.AsyncClient, uuid: str, count: int
) -> tuple[list[float], list[float]]:
    """Each rename's seconds to visible at Find, and the PATCH's own seconds."""
    visible, writes = [], []
    for n in range(count):
        name = f"Art {n}"
        started = time.perf_counter()
        renamed = await publish.patch(f"/courses/{uuid}", json={"name": name}, headers=API)
        written = time.perf_counter()
        assert renamed.is_success, renamed.text
        await seen(find, uuid, name)
        visible.append(time.perf_counter() - started)
        writes.append(written - started)
        await asyncio.sleep(0.02)  # the follower parks again, as it would between writes
    return visible, writes


async def logged(client: httpx.AsyncClient, log: str, field: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (
            await client.get(f"/admin/{log}", headers=ADMIN, params={"after": after, "limit": 5000})
        ).json()
        rows += page[field]
        if not page["has_more"]:
            return rows
        after = page["next"]


async def log_lags(publish: httpx.AsyncClient, find: httpx.AsyncClient, uuid: str) -> list[float]:
    """Each version's seconds from the owner's change to the consumer's commit, as the two logs
    say: on a realtime clock at one second a second, both are wall time on one machine."""
    made = {
        c["version"]: datetime.fromisoformat(c["changed_at"])
        for c in await logged(publish, "changelog", "changes")
        if c["key"] == uuid
    }
    return [
        (datetime.fromisoformat(a["applied_at"]) - made[a["version"]]).total_seconds()
        for a in await logged(find, "applied", "applied")
        if a["key"] == uuid and a["version"] in made
    ]


async def measure(
    folder: Path, writes: int, trips: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    config = LineConfig(
        folder,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        port_offset=free_port_offset(),
        clock_mode="realtime",
        clock_speed=1.0,
        edge_overrides=FOLLOWED,
    )
    running = start_line(config, ["publish", "find"], topology=LINE)
    try:
        urls = running.urls()
        async with (
            httpx.AsyncClient(base_url=urls["publish"], timeout=60) as publish,
            httpx.AsyncClient(base_url=urls["find"], timeout=60) as find,
        ):
            provider = await publish.post("/providers", json=builders.provider(), headers=API)
            assert provider.is_success, provider.text
            path = "/providers/2FR/sites"
            assert (await publish.post(path, json=builders.site(), headers=API)).is_success
            created = await publish.post(
                "/providers/2FR/courses", json=builders.course(), headers=API
            )
            assert created.status_code == 201, created.text
            uuid = created.json()["uuid"]
            await seen(find, uuid, "Art and Design")
            await write_to_visible(publish, find, uuid, 20)  # warm both ends
            warm = len(await log_lags(publish, find, uuid))
            # interleaved, so a busy moment of the machine falls on both alike
            trip_times: list[float] = []
            visible: list[float] = []
            write_times: list[float] = []
            rounds = 5
            for _ in range(rounds):
                trip_times += await round_trips(publish, trips // rounds)
                shown, written = await write_to_visible(publish, find, uuid, writes // rounds)
                visible += shown
                write_times += written
            lags = (await log_lags(publish, find, uuid))[warm:]
            return trip_times, visible, write_times, lags
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--round-trips", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trips, visible, writes, lags = asyncio.run(measure(folder, args.writes, args.round_trips))
        commit = commits(folder, args.round_trips)
    load = os.getloadavg()
    trip_ms, visible_ms = milliseconds(trips), milliseconds(visible)
    write_ms, commit_ms = milliseconds(writes), milliseconds(commit)
    print(
        f"a following consumer (Find on Publish's feed), {len(visible)} writes; "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    print(f"{'ms':<46} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")

    def row(label: str, values: list[float]) -> None:
        p50, p95, p99 = (percentile(values, share) for share in (50, 95, 99))
        print(f"{label:<46} {p50:>7.2f} {p95:>7.2f} {p99:>7.2f} {max(values):>7.2f}")

    row(f"loopback round trip (GET /health, {len(trips)})", trip_ms)
    row(f"SQLite commit, a row and its log ({len(commit)})", commit_ms)
    row("owner write (PATCH /courses/{uuid})", write_ms)
    row(
        "  of it: from the write's answer to visible",
        [v - w for v, w in zip(visible_ms, write_ms, strict=True)],
    )
    row("write to visible at the consumer", visible_ms)
    row("owner's change to consumer's commit (the logs)", milliseconds(lags))
    target = 3 * percentile(trip_ms, 99) + 2 * percentile(commit_ms, 99)
    p99 = percentile(visible_ms, 99)
    print(
        f"target: 3 x round trip p99 + 2 x commit p99 = {target:.2f} ms; "
        f"write to visible p99 {p99:.2f} ms: {'met' if p99 <= target else 'NOT met'} "
        f"({p99 / target:.1f} x the target; median {statistics.median(visible_ms):.2f} ms)"
    )


if __name__ == "__main__":
    main()
