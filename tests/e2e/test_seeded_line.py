"""The seed over real processes: every service ends up holding data, and the copies agree."""

from pathlib import Path

import pytest

from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.topology import LINE
from serviceline.model.lines import Size
from serviceline.model.topology import Kind
from serviceline.testing import ADMIN, API, API_TOKEN, AUDITOR, process_line

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_a_small_seed_fills_every_service_and_starts_in_sync(tmp_path: Path) -> None:
    names = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM] + ["sits"]
    async with process_line(names, tmp_path) as line:
        counts = await seed_line(line.clients, line.control, API_TOKEN, Size.SMALL, seed=3)
        assert counts["schools"] == 300
        assert counts["trainees"] > 0
        assert counts["HESA returns"] > 0

        found = (await line["find"].get("/courses", params={"per_page": 1})).json()
        assert found["total"] > 0
        trainees = (await line["register"].get("/trainees", headers=API)).json()
        assert len(trainees) == counts["trainees"]
        assert all(t["record_source"] == "apply" for t in trainees)
        mentors = (
            await line["placements"].get("/mentors", params={"limit": 5}, headers=AUDITOR)
        ).json()
        for mentor in mentors:
            teacher = (
                await line["dqt"].get(f"/v3/teachers/{mentor['trn']}", headers=AUDITOR)
            ).json()
            assert (mentor["first_name"], mentor["last_name"]) == (
                teacher["firstName"],
                teacher["lastName"],
            )
        institutions = (await line["sits"].get("/institutions", headers=API)).json()
        assert all(i["provider_code"] for i in institutions)

        for service in names:
            edges = (await line[service].get("/admin/edges", headers=ADMIN)).json()
            for edge in edges:
                if LINE.edge(edge["edge"]).schedule is not None and edge["owner"] in names:
                    assert edge["last_sync_at"] is not None, edge["edge"]
