"""The default workload over real processes: a simulated day of the small line's year."""

from datetime import timedelta
from pathlib import Path

import pytest

from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.topology import LINE
from lines.becoming_a_teacher.workload import WorkloadDriver, load_workload
from lines.becoming_a_teacher.workload.state import records
from serviceline.model.lines import Size
from serviceline.model.topology import Kind
from serviceline.testing import API, API_TOKEN, process_line

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_a_day_of_the_default_workload_lands_at_the_owners(tmp_path: Path) -> None:
    names = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM] + ["sits"]
    async with process_line(names, tmp_path) as line:
        await seed_line(line.clients, line.control, API_TOKEN, Size.SMALL, seed=3)
        start = await line.control.now()
        end = start + timedelta(days=1)
        driver = WorkloadDriver(
            load_workload(), line.clients, API_TOKEN, seed=2, start=start, end=end
        )
        await driver.prepare()
        fired = 0
        while (moment := driver.next_at()) is not None:
            await line.control.advance(to=moment)
            fired += await driver.fire(moment)
        await line.control.advance(to=end)

        assert fired > 0
        assert driver.counts.total() + driver.failures.total() == fired
        assert driver.counts["application_submitted"] > 0
        candidates = [c["id"] async for c in records(line["apply"], "candidate", API)]
        assert sorted(candidates) == sorted(driver.state.candidates.items)
        courses = {c["uuid"] async for c in records(line["publish"], "course", API)}
        assert courses == set(driver.state.courses)
