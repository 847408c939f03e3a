"""How long measuring a cycle's lag takes: `serviceline.audit.lag.measure` over synthetic logs.

Publish's courses change through a cycle, and three edges copy them: Find by feed every
5 minutes, Apply by `updated_since` every 10 minutes with a weekly full sync, and Register by a
daily snapshot. Each course is edited a few times, and some are deleted. The logs are built
as the copiers would write them, then measured.
Run: .venv/bin/python bench/bench_lag.py [--courses N] [--edits N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.lag import Applied, LagLogs, OwnerChange, Run, measure

START = datetime(2026, 10, 1, tzinfo=UTC)
CYCLE = timedelta(days=365)
EDGES = {
    "publish.course.find": (timedelta(minutes=5), "feed"),
    "publish.course.apply": (timedelta(minutes=10), "updated_since"),
    "publish.course.register": (timedelta(days=1), "snapshot"),
}


def next_run(moment: datetime, every: timedelta) -> datetime:
    return START + every * ((moment - START) // every + 1)


def synthetic(courses: int, edits: int, seed: int = 1) -> LagLogs:
    """A cycle of course changes, and what each edge applied of them."""
    rng = random.Random(seed)
    logs = LagLogs()
    for number in range(courses):
        key = f"course-{number}"
        moments = sorted(START + CYCLE * rng.random() for _ in range(edits))
        deleted = rng.random() < 0.05
        for version, moment in enumerate(moments, start=1):
            op = "delete" if deleted and version == len(moments) else "upsert"
            logs.changes.append(
                OwnerChange("publish", len(logs.changes) + 1, "course", key, version, op, moment)
            )
            for edge, (every, mechanism) in EDGES.items():
                if op == "delete" and mechanism == "updated_since":
                    continue  # it cannot see the delete
                at = next_run(moment, every)
                logs.applied.append(Applied(len(logs.applied) + 1, edge, key, version, op, at, at))
    for edge, (every, mechanism) in EDGES.items():
        moment = START
        while moment < START + CYCLE:
            full = mechanism == "snapshot" or (moment.weekday() == 5 and moment.hour == 0)
            logs.runs.append(
                Run(len(logs.runs) + 1, edge, mechanism, full, moment, moment, found_nothing=False)
            )
            moment += every
    return logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=20_000)
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    logs = synthetic(args.courses, args.edits)
    began = time.perf_counter()
    report = measure(logs, LINE, START + CYCLE, services=["publish", "find", "apply", "register"])
    took = time.perf_counter() - began
    print(f"{'changes':>10} {'applied':>10} {'runs':>8} {'measure s':>10} {'changes/s':>10}")
    rate = len(logs.changes) / took
    print(
        f"{len(logs.changes):>10,} {len(logs.applied):>10,} {len(logs.runs):>8,} "
        f"{took:>10.1f} {rate:>10,.0f}"
    )
    print()
    print(f"{'edge':<28} {'changes':>8} {'p50 s':>8} {'p99 s':>9} {'never':>6}")
    for name, lag in report.to_json()["edges"].items():
        if name not in EDGES:
            continue
        seconds = lag["lag_seconds"] or {"p50": 0.0, "p99": 0.0}
        print(
            f"{name:<28} {lag['changes']:>8,} {seconds['p50']:>8.0f} {seconds['p99']:>9.0f} "
            f"{lag['never_delivered']:>6,}"
        )


if __name__ == "__main__":
    main()
