"""Drift audit of one large edge: bisecting range checksums vs fetching both sides vs reladiff.

reladiff cannot read SQLite, so its row diffs the same rows written to two PostgreSQL databases.
Run: .venv/bin/python bench/bench_drift_audit.py [--records N] [--postgres URL]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import psycopg
import reladiff  # type: ignore[import-untyped]
from fastapi import FastAPI
from sqlalchemy import Engine, insert
from sqlmodel import Field, Session, SQLModel, create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serviceline.checksum_routes import checksum_router
from serviceline.checksums import DiffResult, bisect, diff_rows
from serviceline.copier import Copy, CopyTarget
from serviceline.feed import Owned
from serviceline.topology import Edge, Mechanism, Topology


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
    topology: Topology = field(default_factory=lambda: Topology((), (), (), (EDGE,), ()))
    owned: dict[str, type[Owned]] = field(default_factory=lambda: {"record": Record})
    copier: BenchCopier = field(default_factory=BenchCopier)

    def session(self) -> Session:
        return Session(self.engine)


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


def build(directory: Path, rows: Rows, copies: Rows) -> tuple[Engine, Engine]:
    """Owner and consumer SQLite databases holding `rows` and `copies`."""
    owner = create_engine(f"sqlite:///{directory / 'owner.db'}")
    consumer = create_engine(f"sqlite:///{directory / 'consumer.db'}")
    SQLModel.metadata.create_all(owner, tables=[Record.__table__])  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(consumer, tables=[RecordCopy.__table__])  # type: ignore[attr-defined]
    with owner.begin() as connection:
        connection.execute(insert(Record.__table__), [{**r, "version": 1} for r in rows])  # type: ignore[attr-defined]
    with consumer.begin() as connection:
        table = RecordCopy.__table__  # type: ignore[attr-defined]
        connection.execute(insert(table), [{**c, "local_edits": []} for c in copies])
    return owner, consumer


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


def reladiff_keys(urls: list[str]) -> set[str]:
    """The keys reladiff finds differing, by its own checksum bisection inside PostgreSQL."""
    owner, consumer = (reladiff.connect_to_table(url, "bench_record", "code") for url in urls)
    diff = reladiff.diff_tables(owner, consumer, extra_columns=("name", "size"))
    keys = {str(row[0]) for _, row in diff}
    for table in (owner, consumer):
        table.database.close()
    return keys


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


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="a PostgreSQL server where reladiff's two databases may be made and dropped",
    )
    args = parser.parse_args()
    rows, copies, drifted = drifted_rows(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        setup, (owner, consumer) = timed(lambda: build(Path(tmp), rows, copies))

        async def audits() -> list[tuple[str, float, DiffResult]]:
            found = []
            async with client("owner", owner) as o, client("consumer", consumer) as c:
                for name, run in (("bisection", bisect), ("full fetch", full_fetch)):
                    start = time.perf_counter()
                    result = await run(o, c, EDGE) if run is bisect else await full_fetch(o, c)
                    found.append((name, time.perf_counter() - start, result))
            return found

        results = anyio.run(audits)
    print(f"{args.records:,} records, {drifted:,} drifted (setup {setup:.1f}s)")
    print(f"{'method':<12} {'seconds':>9} {'requests':>9} {'bytes':>14} {'rows':>10} {'keys':>7}")
    for name, seconds, result in results:
        print(
            f"{name:<12} {seconds:>9.2f} {result.requests:>9,} {result.bytes:>14,} "
            f"{result.rows_fetched:>10,} {len(result.keys):>7,}"
        )
    try:
        pg_setup, urls = timed(lambda: postgres_tables(args.postgres, rows, copies))
    except psycopg.OperationalError as error:
        reason = str(error).splitlines()[0]
        print(f"{'reladiff':<12} not run: PostgreSQL unreachable at {args.postgres} ({reason})")
        return
    try:
        seconds, keys = timed(lambda: reladiff_keys(urls))
    finally:
        drop_postgres(args.postgres)
    agrees = "same keys" if keys == results[0][2].keys else "OTHER keys than bisection"
    print(
        f"{'reladiff':<12} {seconds:>9.2f} {'-':>9} {'-':>14} {'-':>10} {len(keys):>7,}"
        f"  (PostgreSQL, setup {pg_setup:.1f}s; {agrees})"
    )


if __name__ == "__main__":
    main()
