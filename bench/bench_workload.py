"""How long the default workload takes to plan a whole cycle at each seed size.

Prints, for the small, medium and large lines, the cycle's events, the events of its busiest
day, the wall time to draw them and the rate.
Run: .venv/bin/python bench/bench_workload.py [--workload x0.1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lines.becoming_a_teacher.seed import VOLUMES
from lines.becoming_a_teacher.workload import load_workload
from lines.becoming_a_teacher.workload.planner import plan
from lines.becoming_a_teacher.workload.spec import Seeded
from serviceline.model.lines import Size

CYCLE = (datetime(2026, 10, 5, tzinfo=UTC), datetime(2027, 10, 4, tzinfo=UTC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="default")
    workload = load_workload(parser.parse_args().workload)
    print(f"{'size':<8}{'events':>10}{'busiest day':>13}{'seconds':>9}{'events/s':>12}")
    for size in Size:
        seeded = {name: getattr(VOLUMES[size], name) for name in Seeded}
        began = time.perf_counter()
        events = plan(workload, seeded, list(workload.events), random.Random(1), *CYCLE)
        took = time.perf_counter() - began
        busiest = max(Counter(e.at.date() for e in events).values(), default=0)
        rate = len(events) / took if took else 0
        print(f"{size:<8}{len(events):>10,}{busiest:>13,}{took:>9.2f}{rate:>12,.0f}")


if __name__ == "__main__":
    main()
