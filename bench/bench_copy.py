"""Copies of many Publish courses over real HTTP, against a raw bulk insert of the same rows.

A line of real processes (Publish, Find, Apply) on free loopback ports: Publish's batch endpoint
writes the courses, Find copies them by change feed, Apply through Publish's API v1
(`updated_since`), and a fresh Find by listing them all (snapshot); each first copy lands in an
empty database, then an incremental run finds nothing new (Apply's, like the real sync, reads the
two hours before its last run again; it is measured once more after a run two simulated hours later
has moved past that overlap). The copies run only when asked: no schedule makes one due. Each rate
is set beside a raw insert of the very rows that path stored, into a fresh SQLite file in one
transaction (executemany), the fastest of three.
Before the copies, API v1's course list is read by page number, 500 a page, at several page
positions up to the last: what one page costs at each position.
Run: .venv/bin/python bench/bench_copy.py [--records N] [--per-provider N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Column, MetaData, Table, create_engine, insert, inspect, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lines.becoming_a_teacher.topology import LINE
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import LineConfig, RunningLine, free_port_offset, start_line
from tests import builders

ADMIN_TOKEN, API_TOKEN = "bench-admin", "bench-api"
API = {"Authorization": f"Bearer {API_TOKEN}"}
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PER_PAGE = 500
NEVER_DUE = "0 0 29 2 *"


@dataclass(frozen=True)
class Measured:
    path: str
    records: int
    seconds: float
    pages: int | None
    # the table the path stored its rows in, and where, for the raw insert to repeat them
    database: Path
    table: str

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


def code(number: int, width: int) -> str:
    digits = ""
    for _ in range(width):
        number, digit = divmod(number, len(ALPHABET))
        digits = ALPHABET[digit] + digits
    return digits


def line(state_dir: Path, names: list[str], **settings: dict[str, str]) -> RunningLine:
    # the copies run when the benchmark asks, not when a clock it moves makes them due
    by_hand = {
        edge.name: f"{edge.mechanism.value}@{NEVER_DUE}"
        for edge in LINE.edges
        if {edge.owner, edge.consumer} <= set(names)
    }
    config = LineConfig(
        state_dir,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        port_offset=free_port_offset(),
        service_settings=settings,
        edge_overrides=by_hand,
    )
    return start_line(config, names, topology=LINE)


def control(running: RunningLine) -> tuple[dict[str, httpx.AsyncClient], LineControl]:
    clients = {
        name: httpx.AsyncClient(base_url=url, timeout=3600) for name, url in running.urls().items()
    }
    return clients, LineControl(clients, ADMIN_TOKEN, LINE)


async def publish_courses(publish: httpx.AsyncClient, records: int, per_provider: int) -> float:
    """Write `records` courses through Publish's batch endpoints; the seconds the courses took."""
    providers = [code(n, 3) for n in range((records + per_provider - 1) // per_provider)]
    body = [builders.provider(p, name=f"Provider {p}") for p in providers]
    assert (await publish.post("/providers/batch", json=body, headers=API)).is_success
    for provider in providers:
        path = f"/providers/{provider}/sites"
        assert (await publish.post(path, json=builders.site(), headers=API)).is_success
    started = time.perf_counter()
    for index, provider in enumerate(providers):
        count = min(per_provider, records - index * per_provider)
        courses = [builders.course(code(n, 4)) for n in range(count)]
        path = f"/providers/{provider}/courses/batch"
        written = await publish.post(path, json=courses, headers=API)
        assert written.status_code == 201, written.text
    return time.perf_counter() - started


@dataclass(frozen=True)
class PageCost:
    page: int
    rows: int
    # every read of the page, in seconds
    spent: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.spent)


async def page_costs(publish: httpx.AsyncClient, records: int, rounds: int = 7) -> list[PageCost]:
    """What one page of API v1's course list costs at page 1, 2, and on to the last.

    Each round reads every page position once, so a busy moment of the machine falls on all
    of them alike rather than on one.
    """
    path = "/api/public/v1/recruitment_cycles/2027/courses"
    last = max(1, -(-records // PER_PAGE))
    # the first read after the writes catches up on all of them: not a page's own cost
    assert (await publish.get(path, params={"page[per_page]": PER_PAGE})).is_success
    pages = sorted({1, 2, last // 4, last // 2, last - 1, last} - {0})
    spent: dict[int, list[float]] = {page: [] for page in pages}
    rows: dict[int, int] = {}
    for _ in range(rounds):
        for page in pages:
            params = {"page[page]": page, "page[per_page]": PER_PAGE}
            started = time.perf_counter()
            response = await publish.get(path, params=params)
            spent[page].append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            rows[page] = len(response.json()["data"])
    return [PageCost(page, rows[page], spent[page]) for page in pages]


async def copied(
    control: LineControl,
    edge: str,
    records: int,
    database: Path,
    table: str,
    *,
    full: bool,
    when: str = "",
) -> Measured:
    started = time.perf_counter()
    result = (await control.run_edge(edge, full=full))["result"]
    seconds = time.perf_counter() - started
    label = f"{edge} {'snapshot' if full else result['mechanism']}{when}"
    return Measured(label, records, seconds, result.get("pages"), database, table)


def raw_insert(database: Path, table: str, into: Path, tries: int = 3) -> float:
    """Seconds to insert every row of `table` into a fresh SQLite file: one transaction.

    The fastest of a few tries, each into a file of its own: a busy moment of the machine
    should not make the copies look closer to it than they are.
    """
    source = create_engine(f"sqlite:///{database}")
    with source.connect() as connection:
        # the same columns and key, no foreign keys (their tables are not there) nor indexes
        stored = inspect(connection)
        key = set(stored.get_pk_constraint(table)["constrained_columns"])
        columns = [
            Column(c["name"], c["type"], primary_key=c["name"] in key)
            for c in stored.get_columns(table)
        ]
        fresh = Table(table, MetaData(), *columns)
        rows = [dict(row._mapping) for row in connection.execute(select(fresh))]
    source.dispose()
    fastest = float("inf")
    for attempt in range(tries):
        target = create_engine(f"sqlite:///{into.with_suffix(f'.{attempt}.db')}")
        fresh.create(target)
        started = time.perf_counter()
        with target.begin() as connection:
            connection.execute(insert(fresh), rows)
        fastest = min(fastest, time.perf_counter() - started)
        target.dispose()
    return fastest


async def measure(
    folder: Path, records: int, per_provider: int
) -> tuple[list[Measured], list[PageCost]]:
    running = line(folder / "line", ["publish", "find", "apply"])
    try:
        clients, drive = control(running)
        db = folder / "line"
        wrote = await publish_courses(clients["publish"], records, per_provider)
        found: list[Measured] = [
            Measured(
                "publish courses/batch", records, wrote, None, db / "publish.db", "publish_course"
            )
        ]
        costs = await page_costs(clients["publish"], records)
        for edge, consumer in (
            ("publish.course.find", "find"),
            ("publish.course.apply", "apply"),
        ):
            table = f"{consumer}_course"
            database = db / f"{consumer}.db"
            found.append(await copied(drive, edge, records, database, table, full=False))
            found.append(await copied(drive, edge, 0, database, table, full=False))
        # Apply reads again the two hours before its last run, as the real sync does: what
        # Publish wrote comes back until a run more than two hours later has moved past it
        await drive.advance(by="2h10m")
        await drive.run_edge("publish.course.apply")
        found.append(
            await copied(
                drive,
                "publish.course.apply",
                0,
                db / "apply.db",
                "apply_course",
                full=False,
                when=", past its overlap",
            )
        )
        publish_url = running.urls()["publish"]
        fresh = line(
            folder / "fresh", ["find"], find={"upstreams": f'{{"publish": "{publish_url}"}}'}
        )
        try:
            fresh_clients, fresh_drive = control(fresh)
            find_db = folder / "fresh" / "find.db"
            found.append(
                await copied(
                    fresh_drive, "publish.course.find", records, find_db, "find_course", full=True
                )
            )
            for client in fresh_clients.values():
                await client.aclose()
        finally:
            fresh.stop()
        for client in clients.values():
            await client.aclose()
        return found, costs
    finally:
        running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--per-provider", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        found, costs = asyncio.run(measure(folder, args.records, args.per_provider))
        raw = {
            (m.database, m.table): raw_insert(m.database, m.table, folder / f"raw-{n}.db")
            for n, m in enumerate(found)
            if m.records
        }
    load = os.getloadavg()[0]
    print(f"{args.records:,} courses, {args.per_provider} a provider; load {load:.2f}")
    width = max(len(m.path) + len(" (nothing new)") for m in found)
    print(f"{'path':<{width}} {'seconds':>8} {'pages':>6}", end="")
    print(f" {'records/s':>10} {'raw/s':>10} {'ratio':>7}")
    for m in found:
        pages = "-" if m.pages is None else f"{m.pages:,}"
        if m.records:
            raw_rate = m.records / raw[(m.database, m.table)]
            print(
                f"{m.path:<{width}} {m.seconds:>8.2f} {pages:>6} {m.rate:>10,.0f}"
                f" {raw_rate:>10,.0f} {m.rate / raw_rate:>6.3f}x"
            )
        else:
            print(f"{m.path + ' (nothing new)':<{width}} {m.seconds:>8.3f} {pages:>6}")
    print("ratio: records a second by that path over a raw insert of the same rows")
    print()
    print(f"API v1 course list by page number, {PER_PAGE} a page, {len(costs[0].spent)} reads each")
    print(f"{'page':>6} {'rows':>6} {'median ms':>10} {'fastest ms':>11} {'median vs page 1':>17}")
    for cost in costs:
        print(
            f"{cost.page:>6,} {cost.rows:>6} {cost.median * 1000:>10.1f}"
            f" {min(cost.spent) * 1000:>11.1f} {cost.median / costs[0].median:>16.2f}x"
        )


if __name__ == "__main__":
    main()
