"""Drift audit of one large edge: bisecting range checksums vs fetching both sides vs reladiff.

Bisection runs twice in one process, as a service serves audit after audit: first over sides
never hashed, then after one row in a thousand a side was written again, as an audit repeated
later finds them. reladiff cannot read SQLite, so it diffs the same rows written to two
PostgreSQL databases. Each method runs in a process of its own, so its memory peak is its own.

With --line SIZE, instead: a sample as a study takes it, of a seeded and settled line of real
processes (every service) after a simulated day under the default workload, by a fresh auditor
and by a remembering one that audited the line at the day's start, as a study's does; both
reports must be the same.
Run: .venv/bin/python bench/bench_drift_audit.py [--records N] [--every N] [--postgres URL]
     .venv/bin/python bench/bench_drift_audit.py --line medium [--hours 24]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import anyio
import httpx
import psycopg
import reladiff  # type: ignore[import-untyped]
from fastapi import FastAPI
from sqlalchemy import Engine, insert, update
from sqlmodel import Field, Session, col

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.topology import LINE
from lines.becoming_a_teacher.workload import WorkloadDriver, load_workload
from serviceline.audit.checksum_routes import checksum_router
from serviceline.audit.checksums import DiffResult, HashedSide, RowHash, bisect, diff_rows
from serviceline.audit.drift import Auditor
from serviceline.consumer.tables import Copy, CopyTarget
from serviceline.model.lines import Size
from serviceline.model.topology import Edge, Entity, Mechanism, Topology
from serviceline.owner.feed import Owned
from serviceline.runtime.db import create_tables, make_engine, readonly, upsert
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import LineConfig, free_port_offset, start_line
from serviceline.studies.runner import advance_and_fire


class Record(Owned, table=True):
    __tablename__ = "bench_record"
    entity: ClassVar[str] = "record"
    key_field: ClassVar[str] = "code"
    code: str = Field(primary_key=True)
    name: str
    size: int


class RecordCopy(Copy, table=True):
    __tablename__ = "bench_record_copy"
    code: str = Field(primary_key=True)
    name: str
    size: int


EDGE = Edge(
    "owner",
    "consumer",
    "record",
    Mechanism.SNAPSHOT,
    None,
    {"code": "code", "name": "name", "size": "size"},
)


@dataclass
class BenchCopier:
    edges: dict[str, Edge] = field(default_factory=lambda: {EDGE.name: EDGE})
    targets: dict[str, CopyTarget] = field(
        default_factory=lambda: {"record": CopyTarget(RecordCopy)}
    )


@dataclass
class BenchKernel:
    """As much of a kernel as the checksum routes ask of it."""

    name: str
    engine: Engine
    topology: Topology = field(
        default_factory=lambda: Topology(
            (), (Entity("record", ("owner",), "code"),), (), (EDGE,), ()
        )
    )
    owned: dict[str, type[Owned]] = field(default_factory=lambda: {"record": Record})
    copier: BenchCopier = field(default_factory=BenchCopier)
    writers: anyio.Lock = field(default_factory=anyio.Lock)

    def session(self, *, writes: bool = True) -> Session:
        return Session(self.engine if writes else readonly(self.engine))


Rows = list[dict[str, Any]]


def drifted_rows(records: int, seed: int = 7) -> tuple[Rows, Rows, int]:
    """Owner rows and the consumer's copies of them, drifted at 0.1% (deleted, changed, added)."""
    rng = random.Random(seed)
    rows: Rows = [
        {"code": f"{n:08d}", "name": f"record {n}", "size": n % 97} for n in range(records)
    ]
    drifted = rng.sample(range(records), max(3, records // 1000))
    copies: dict[str, dict[str, Any]] = {row["code"]: dict(row) for row in rows}
    for index, n in enumerate(drifted):
        key = f"{n:08d}"
        if index % 3 == 0:
            del copies[key]
        elif index % 3 == 1:
            copies[key]["name"] += " (renamed)"
        else:
            copies[f"{n:08d}x"] = {"code": f"{n:08d}x", "name": "stray", "size": 0}
    return rows, list(copies.values()), len(drifted)


def engines(directory: Path) -> tuple[Engine, Engine]:
    owner, consumer = (make_engine(f"sqlite:///{directory / f'{side}.db'}") for side in SIDES)
    return owner, consumer


SIDES = ("owner", "consumer")
# what a record or a copy holds besides the rows' own columns, as each starts
RECORD = Record(code="", name="", size=0).model_dump(exclude={"code", "name", "size"})
COPY = RecordCopy(code="", name="", size=0).model_dump(exclude={"code", "name", "size"})


def build(directory: Path, rows: Rows, copies: Rows) -> None:
    """Owner and consumer SQLite databases holding `rows` and `copies`."""
    owner, consumer = engines(directory)
    create_tables(owner, [Record, HashedSide, RowHash])
    create_tables(consumer, [RecordCopy, HashedSide, RowHash])
    with owner.begin() as connection:
        table = Record.__table__  # type: ignore[attr-defined]
        connection.execute(insert(table), [{**RECORD, **r, "version": 1} for r in rows])
    with consumer.begin() as connection:
        table = RecordCopy.__table__  # type: ignore[attr-defined]
        connection.execute(insert(table), [{**COPY, **c} for c in copies])
    owner.dispose()
    consumer.dispose()


def rewrite(directory: Path, rows: Rows, copies: Rows) -> None:
    """Write `rows` and `copies` again, unchanged: the owner a new version of each record, the
    consumer the copier's upsert of each copy. Nothing differs more, but their hashes are out
    of date."""
    owner, consumer = engines(directory)
    with Session(owner) as session:
        keys = [row["code"] for row in rows]
        version = col(Record.version)
        session.exec(update(Record).where(col(Record.code).in_(keys)).values(version=version + 1))
        session.commit()
    with Session(consumer) as session:
        upsert(session, RecordCopy, [{**COPY, **copy} for copy in copies], "code")
        session.commit()
    owner.dispose()
    consumer.dispose()


def disk(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir())


PG_DATABASES = ("serviceline_bench_owner", "serviceline_bench_consumer")


def postgres_tables(server: str, rows: Rows, copies: Rows) -> list[str]:
    """The two sides as tables of their own PostgreSQL databases, made afresh: their URLs."""
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        for database in PG_DATABASES:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")
            admin.execute(f"CREATE DATABASE {database}")
    for database, side in zip(PG_DATABASES, (rows, copies), strict=True):
        with psycopg.connect(f"{server}/{database}") as connection:
            connection.execute(
                "CREATE TABLE bench_record (code text PRIMARY KEY, name text, size integer)"
            )
            with connection.cursor().copy(
                "COPY bench_record (code, name, size) FROM STDIN"
            ) as copy:
                for row in side:
                    copy.write_row((row["code"], row["name"], row["size"]))
    return [f"{server}/{database}" for database in PG_DATABASES]


def drop_postgres(server: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        for database in PG_DATABASES:
            admin.execute(f"DROP DATABASE IF EXISTS {database}")


def client(name: str, engine: Engine) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(checksum_router)
    app.state.kernel = BenchKernel(name, engine)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=3600
    )


async def full_fetch(owner: httpx.AsyncClient, consumer: httpx.AsyncClient) -> DiffResult:
    """Every row of both sides, read range by range, compared locally."""
    result = DiffResult(EDGE.name)
    cut = (await owner.get(f"/checksums/records/{EDGE.name}", params={"buckets": 256})).json()
    for bucket in cut["buckets"]:
        span = {k: v for k, v in (("from", bucket["from"]), ("to", bucket["to"])) if v is not None}
        sides = []
        for side, http in (("records", owner), ("copies", consumer)):
            response = await http.get(f"/checksums/{side}/{EDGE.name}/rows", params=span)
            result.requests += 1
            result.bytes += len(response.content)
            sides.append(response.json()["rows"])
        result.rows_fetched += len(sides[0]) + len(sides[1])
        diff_rows(EDGE, sides[0], sides[1], result)
    return result


@dataclass
class Audited:
    method: str
    seconds: float
    keys: set[str]
    peak_mb: float
    result: DiffResult | None = None


def audit(method: str, where: str) -> Audited:
    """One audit, timed: `where` is the SQLite folder, or reladiff's two PostgreSQL URLs."""
    start = time.perf_counter()
    if method == "reladiff":
        owner, consumer = (
            reladiff.connect_to_table(url, "bench_record", "code") for url in where.split()
        )
        diff = reladiff.diff_tables(owner, consumer, extra_columns=("name", "size"))
        keys = {str(row[0]) for _, row in diff}
        seconds = time.perf_counter() - start
        for table in (owner, consumer):
            table.database.close()
        return Audited(method, seconds, keys, _peak_mb())

    async def audited() -> DiffResult:
        owner, consumer = engines(Path(where))
        async with client("owner", owner) as o, client("consumer", consumer) as c:
            return await (
                bisect(o, c, EDGE) if method.startswith("bisection") else full_fetch(o, c)
            )

    result = anyio.run(audited)
    return Audited(method, time.perf_counter() - start, result.keys, _peak_mb(), result)


def _peak_mb() -> float:
    """This process's peak resident memory (ru_maxrss would count its parent's too)."""
    status = Path("/proc/self/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(peak.split()[1]) / 1024


def bisections(where: str, again: tuple[Rows, Rows]) -> tuple[Audited, int, Audited]:
    """A first audit, the disk its hashes take, and an audit after `again` was written: in one
    process, as a service serves audit after audit."""
    folder = Path(where)
    before = disk(folder)
    first = audit("bisection", where)
    hashed = disk(folder) - before
    rewrite(folder, *again)
    return first, hashed, audit("bisection again", where)


Returned = TypeVar("Returned")


def apart(run: Callable[..., Returned], *args: Any) -> Returned:
    """`run(*args)` in a fresh process, its memory peak its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        returned: Returned = pool.apply(run, args)
    return returned


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


ADMIN_TOKEN, API_TOKEN, AUDITOR_TOKEN = "bench-admin", "bench-api", "bench-audit"


@dataclass(frozen=True)
class Sampled:
    auditor: str
    seconds: float
    requests: int
    report: dict[str, Any]


async def line_samples(folder: Path, size: Size, hours: float) -> tuple[int, list[Sampled]]:
    """A sample of a seeded line after `hours` under the default workload, by each auditor: the
    events performed, and each sample."""
    config = LineConfig(
        folder,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        auditor_token=AUDITOR_TOKEN,
        port_offset=free_port_offset(),
    )
    running = start_line(
        config, [service.name for service in LINE.services], timeout=600, topology=LINE
    )
    asked: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        asked[request.url.host] += 1

    clients = {
        name: httpx.AsyncClient(base_url=url, timeout=3600, event_hooks={"request": [count]})
        for name, url in running.urls().items()
    }
    try:
        control = LineControl(clients, ADMIN_TOKEN, LINE)
        await seed_line(clients, control, API_TOKEN, size)
        # a first day settles what the seed left due (TRN requests, first full syncs), which
        # writes to DQT as no later day of a study does
        await control.advance(by="1d")
        token, topology = AUDITOR_TOKEN, running.topology
        remembering = Auditor(clients=clients, token=token, topology=topology, remember=True)
        await remembering.audit()  # the study's sample at the day's start
        start = await control.now()
        end = start + timedelta(hours=hours)
        events = WorkloadDriver(
            load_workload("default"),
            clients,
            API_TOKEN,
            seed=1,
            start=start,
            end=end,
        )
        await events.prepare()
        moment = start
        while moment < end:
            moment = min(events.next_at() or end, end)
            await advance_and_fire(control, events, moment, whole=moment >= end)
        samples = []
        fresh = Auditor(clients=clients, token=token, topology=topology)
        for name, auditor in (("fresh", fresh), ("remembering", remembering)):
            before = asked.total()
            began = time.perf_counter()
            report = (await auditor.audit()).to_json()
            seconds = time.perf_counter() - began
            samples.append(Sampled(name, seconds, asked.total() - before, report))
        return events.counts.total(), samples
    finally:
        for client in clients.values():
            await client.aclose()
        running.stop()


def line_main(size: Size, hours: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        events, samples = anyio.run(line_samples, Path(tmp), size, hours)
    fresh = samples[0]
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"a {size.value} line after {hours:g} simulated hours, {events:,} events (load {load})")
    print(f"{'auditor':<12} {'seconds':>9} {'requests':>9} {'ratio':>6}")
    for sample in samples:
        same = "" if sample.report == fresh.report else "  ANOTHER report than the fresh one"
        ratio = fresh.seconds / sample.seconds
        print(
            f"{sample.auditor:<12} {sample.seconds:>9.2f} {sample.requests:>9,} {ratio:>6.2f}{same}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="a PostgreSQL server where reladiff's two databases may be made and dropped",
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1000,
        help="between the two bisection audits, one row in this many is written again a side",
    )
    parser.add_argument("--line", type=Size, help="time a study's sample of a line this size")
    parser.add_argument("--hours", type=float, default=24, help="with --line: simulated hours")
    args = parser.parse_args()
    if args.line is not None:
        line_main(args.line, args.hours)
        return
    rows, copies, drifted = drifted_rows(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        setup, _ = timed(lambda: build(folder, rows, copies))
        again = rows[:: args.every], copies[:: args.every]
        first, hashed, second = apart(bisections, tmp, again)
        audits = [first, second, apart(audit, "full fetch", tmp)]
        try:
            pg_setup, urls = timed(lambda: postgres_tables(args.postgres, rows, copies))
        except psycopg.OperationalError as error:
            reason = str(error).splitlines()[0]
            unreachable = f"not run: PostgreSQL unreachable at {args.postgres} ({reason})"
        else:
            unreachable = ""
            try:
                audits.append(apart(audit, "reladiff", " ".join(urls)))
            finally:
                drop_postgres(args.postgres)
    print(f"{args.records:,} records, {drifted:,} drifted (setup {setup:.1f}s)")
    print(
        f"{'method':<16} {'seconds':>9} {'requests':>9} {'bytes':>14} {'rows':>10} {'keys':>7}"
        f" {'peak MB':>8}"
    )
    for audited in audits:
        result = audited.result
        moved = (
            f"{result.requests:>9,} {result.bytes:>14,} {result.rows_fetched:>10,}"
            if result is not None
            else f"{'-':>9} {'-':>14} {'-':>10}"
        )
        agrees = "" if audited.keys == audits[0].keys else "  OTHER keys than bisection"
        print(
            f"{audited.method:<16} {audited.seconds:>9.2f} {moved} {len(audited.keys):>7,}"
            f" {audited.peak_mb:>8.0f}{agrees}"
        )
    if unreachable:
        print(f"{'reladiff':<16} {unreachable}")
    else:
        print(f"reladiff diffs in PostgreSQL (setup {pg_setup:.1f}s)")
    print(
        f"bisection: the first audit hashes every row and keeps the hashes "
        f"({hashed / 2**20:,.0f} MB on disk, both sides); the next hashes only the rows written "
        f"since ({len(again[0]):,} a side); peak MB is the process's, both audits, owner, "
        f"consumer and auditor in it"
    )


if __name__ == "__main__":
    main()
