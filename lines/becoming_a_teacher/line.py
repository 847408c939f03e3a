"""The line as the kernel runs it: its topology, its services, its seed and its recruitment
cycle's workloads."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import httpx

from lines.becoming_a_teacher.apps import SERVICES
from lines.becoming_a_teacher.seed import already_seeded, seed_line
from lines.becoming_a_teacher.topology import LINE
from lines.becoming_a_teacher.workload import WorkloadDriver, load_workload
from serviceline.model.lines import Line

HERE = Path(__file__).parent


class CycleWorkloads:
    """The built-in cycle ("default", scaled as "x0.1") or a workload file, optionally scaled."""

    def check(self, source: str) -> None:
        load_workload(source)

    def events(
        self,
        source: str,
        clients: Mapping[str, httpx.AsyncClient],
        api_token: str,
        *,
        seed: int,
        start: datetime,
        end: datetime,
    ) -> WorkloadDriver:
        return WorkloadDriver(
            load_workload(source), clients, api_token, seed=seed, start=start, end=end
        )


BECOMING_A_TEACHER = Line(
    topology=LINE,
    services=SERVICES,
    seed=seed_line,
    already_seeded=already_seeded,
    workloads=CycleWorkloads(),
    seeded=("gias", "publish", "apply", "manage", "dqt", "placements", "claims"),
    scenarios=HERE / "scenarios",
    studies=HERE / "studies",
)
