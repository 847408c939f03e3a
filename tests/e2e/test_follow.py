"""A following consumer over real processes and real HTTP, on a realtime clock."""

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from serviceline.testing import ADMIN, API, LineUnderTest, process_line
from tests import builders

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FIND_COURSES = "publish.course.find"
FOLLOWED = {FIND_COURSES: "feed@follow", "publish.provider.find": "feed@follow"}
# long enough for a loaded machine; the copy is there in milliseconds
PATIENCE = 60.0


async def visible(find: httpx.AsyncClient, uuid: str, name: str) -> dict[str, Any]:
    """Find's copy of the course once it carries `name`; fails if it never does."""
    with anyio.fail_after(PATIENCE):
        while True:
            response = await find.get(f"/copies/course/{uuid}")
            if response.status_code == 200 and response.json()["name"] == name:
                copy: dict[str, Any] = response.json()
                return copy
            await anyio.sleep(0.01)


async def test_a_write_at_the_owner_reaches_a_following_consumer_with_no_clock_step(
    tmp_path: Path,
) -> None:
    # a simulated second a second: Find's own five-minute cron would not fire during the test,
    # and the followed edge has none
    async with process_line(
        ["publish", "find"],
        tmp_path,
        clock_mode="realtime",
        clock_speed=1.0,
        edge_overrides=FOLLOWED,
    ) as line:
        await following(line)


async def following(line: LineUnderTest) -> None:
    publish, find = line["publish"], line["find"]
    jobs = (await find.get("/admin/jobs", headers=ADMIN)).json()
    [job] = [j for j in jobs if j["name"] == FIND_COURSES]
    assert (job["schedule"], job["due_at"]) == (None, None)
    [edge] = [
        e
        for e in (await find.get("/admin/edges", headers=ADMIN)).json()
        if e["edge"] == FIND_COURSES
    ]
    assert (edge["mechanism"], edge["schedule"], edge["follow"]) == ("feed", None, True)

    await builders.publish_provider(line, builders.provider(), builders.site())
    created = await publish.post("/providers/2FR/courses", json=builders.course(), headers=API)
    assert created.status_code == 201, created.text
    uuid = created.json()["uuid"]
    await visible(find, uuid, "Art and Design")
    for name in ("Art", "Art and Photography", "Fine Art"):
        renamed = await publish.patch(f"/courses/{uuid}", json={"name": name}, headers=API)
        assert renamed.is_success, renamed.text
        copy = await visible(find, uuid, name)
        assert copy["source_version"] == renamed.json()["version"]

    # each change was applied by a run of the followed edge, logged as a scheduled run is (the
    # last may still be recording its finish); a follower that started before Publish answered
    # logged failed runs, and went on
    with anyio.fail_after(PATIENCE):
        while True:
            page = await find.get("/admin/copy-runs", headers=ADMIN, params={"limit": 1000})
            ours = [r for r in page.json()["runs"] if r["edge"] == FIND_COURSES and r["fetched"]]
            if all(r["finished_at"] is not None for r in ours):
                break
            await anyio.sleep(0.05)
    assert sum(r["upserted"] for r in ours) == 4
