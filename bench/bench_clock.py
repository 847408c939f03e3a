"""Simulated days per wall minute of a seeded line of real processes, and what the clock costs.

Each configuration starts its own line (the ten services, or with the four student record systems),
seeds it, lives the first day after the seed (both timed), then advances its clock a day at a time,
nothing changing (quiet). Counted per simulated day: the jobs run, the copy polls that found
nothing (and how many of them were not made at all: skipped), the requests the services sent each
other, the control's calls to the services' clocks, and the wall seconds the jobs worked. The
overhead ratio is the wall time beyond that work over the work itself. Then the same line lives as
many days under the default workload (the seed's first days of the cycle, October's rates), stepped
as a study steps it without its drift samples: simulated days per wall minute, and the events a
day.
Run: .venv/bin/python bench/bench_clock.py [--sizes small medium large] [--days N]
[--services ten|all|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.topology import LINE, RECORD_SYSTEMS
from lines.becoming_a_teacher.workload import WorkloadDriver, load_workload
from serviceline.model.lines import Size
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import LineConfig, free_port_offset, start_line
from serviceline.studies.runner import advance_and_fire

ADMIN_TOKEN, API_TOKEN = "bench-admin", "bench-api"
TEN = [s.name for s in LINE.services if s.name not in RECORD_SYSTEMS]


@dataclass(frozen=True)
class Day:
    """One configuration's quiet days, per simulated day."""

    size: str
    services: int
    skip: bool
    days: int
    wall: float
    jobs: int
    empty_polls: int
    skipped_polls: int
    requests: int
    clock_calls: int
    work: float
    busy_wall: float
    events: int
    # wall seconds of the seed, and of the first day after it, which settles what the seed left due
    seed_wall: float
    first_day_wall: float

    def per_day(self, value: float) -> float:
        return value / self.days

    @property
    def days_per_minute(self) -> float:
        return 60 * self.days / self.wall

    @property
    def busy_days_per_minute(self) -> float:
        return 60 * self.days / self.busy_wall

    @property
    def overhead(self) -> float:
        return (self.wall - self.work) / self.work if self.work else float("inf")


EDGES = {edge.name for edge in LINE.edges}


def is_empty_poll(job: dict[str, Any]) -> bool:
    result = job.get("result")
    if job["job"].removesuffix(":full") not in EDGES or not isinstance(result, dict):
        return False
    return not (result["upserted"] or result["deleted"] or result["flagged"])


async def totals(control: LineControl) -> tuple[float, int]:
    """The wall seconds every service's jobs worked so far, and the requests they sent."""
    clocks = await control.clocks()
    return (
        sum(view.get("work_seconds", 0.0) for view in clocks.values()),
        sum(view.get("requests", 0) for view in clocks.values()),
    )


async def quiet_days(control: LineControl, days: int) -> tuple[float, list[dict[str, Any]], int]:
    """Advance `days` days a day at a time: the wall seconds, the jobs run, the clock calls."""
    calls = control.calls
    ran: list[dict[str, Any]] = []
    started = time.perf_counter()
    for _ in range(days):
        ran += await control.advance(by="1d")
    return time.perf_counter() - started, ran, control.calls - calls


async def busy_days(
    control: LineControl, clients: dict[str, httpx.AsyncClient], days: int
) -> tuple[float, int]:
    """Live `days` days under the default workload: the wall seconds and the events performed."""
    start = await control.now()
    end = start + timedelta(days=days)
    events = WorkloadDriver(
        load_workload("default"), clients, API_TOKEN, seed=1, start=start, end=end
    )
    await events.prepare()
    control.remember_views = True
    started = time.perf_counter()
    moment = start
    while moment < end:
        moment = min(events.next_at() or end, end)
        await advance_and_fire(control, events, moment, whole=moment >= end)
    return time.perf_counter() - started, events.counts.total() + events.failures.total()


async def measure(folder: Path, size: Size, names: list[str], skip: bool, days: int) -> Day:
    config = LineConfig(
        folder,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        port_offset=free_port_offset(),
        skip_quiet_polls=skip,
    )
    running = start_line(config, names, timeout=600, topology=LINE)
    try:
        clients = {
            name: httpx.AsyncClient(base_url=url, timeout=3600)
            for name, url in running.urls().items()
        }
        control = LineControl(clients, ADMIN_TOKEN, LINE)
        started = time.perf_counter()
        await seed_line(clients, control, API_TOKEN, size)
        seeded = time.perf_counter()
        # a first day settles what the seed left due (TRN requests, first full syncs)
        await control.advance(by="1d")
        settled = time.perf_counter()
        work, requests = await totals(control)
        wall, ran, calls = await quiet_days(control, days)
        work_after, requests_after = await totals(control)
        busy_wall, events = await busy_days(control, clients, days)
        for client in clients.values():
            await client.aclose()
        return Day(
            size.value,
            len(names),
            skip,
            days,
            wall,
            len(ran),
            sum(is_empty_poll(job) for job in ran),
            sum(bool((job.get("result") or {}).get("skipped")) for job in ran),
            requests_after - requests,
            calls,
            work_after - work,
            busy_wall,
            events,
            seeded - started,
            settled - seeded,
        )
    finally:
        running.stop()


def table(found: list[Day]) -> Table:
    out = Table(title="a simulated day, quiet, then under the default workload")
    for column in (
        "size",
        "services",
        "seed s",
        "first day s",
        "skip quiet",
        "days/min",
        "wall s/day",
        "jobs/day",
        "empty polls",
        "skipped",
        "requests",
        "clock calls",
        "work s/day",
        "overhead",
        "workload days/min",
        "events/day",
    ):
        out.add_column(column, justify="left" if column == "size" else "right")
    for day in found:
        out.add_row(
            day.size,
            str(day.services),
            f"{day.seed_wall:.0f}",
            f"{day.first_day_wall:.1f}",
            "yes" if day.skip else "no",
            f"{day.days_per_minute:.1f}",
            f"{day.per_day(day.wall):.2f}",
            f"{day.per_day(day.jobs):,.0f}",
            f"{day.per_day(day.empty_polls):,.0f}",
            f"{day.per_day(day.skipped_polls):,.0f}",
            f"{day.per_day(day.requests):,.0f}",
            f"{day.per_day(day.clock_calls):,.0f}",
            f"{day.per_day(day.work):.2f}",
            f"{day.overhead:.2f}",
            f"{day.busy_days_per_minute:.1f}",
            f"{day.per_day(day.events):,.0f}",
        )
    return out


async def run_all(
    sizes: list[Size], days: int, skips: list[bool], lines: list[list[str]]
) -> list[Day]:
    found = []
    for size in sizes:
        for names in lines:
            for skip in skips:
                with tempfile.TemporaryDirectory() as tmp:
                    found.append(await measure(Path(tmp), size, names, skip, days))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", nargs="+", choices=[s.value for s in Size], default=[Size.SMALL.value]
    )
    parser.add_argument("--days", type=int, default=2, help="quiet days measured per line")
    parser.add_argument(
        "--skip", choices=["both", "on", "off"], default="both", help="skip_quiet_polls"
    )
    parser.add_argument(
        "--services",
        choices=["ten", "all", "both"],
        default="both",
        help="the ten services, all fourteen (with the record systems), or each in turn",
    )
    args = parser.parse_args()
    skips = {"both": [False, True], "on": [True], "off": [False]}[args.skip]
    every = [s.name for s in LINE.services]
    lines = {"ten": [TEN], "all": [every], "both": [TEN, every]}[args.services]
    sizes = [Size(s) for s in args.sizes]
    found = asyncio.run(run_all(sizes, args.days, skips, lines))
    console = Console(width=200)
    console.print(table(found))
    console.print(
        f"load {os.getloadavg()[0]:.2f}; overhead: (wall - job work) / job work, job work "
        "summed over the services; requests: what the services sent each other"
    )


if __name__ == "__main__":
    main()
