from pathlib import Path

import pytest

from serviceline.testing import API, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio


async def test_school_reaches_publish_then_course_reaches_find(state_dir: Path) -> None:
    async with in_process_line(["gias", "publish", "find"], state_dir) as line:
        assert (
            await line["gias"].post("/schools", json=builders.school(), headers=API)
        ).status_code == 201
        await line.control.run_job("gias", "gias.daily_extract")
        stats = await line.control.run_edge("gias.school.publish")
        assert stats["result"]["upserted"] == 1
        copy = (await line["publish"].get("/copies/school/100000")).json()
        assert copy["name"] == "The Aldgate School"
        assert copy["source_version"] is None

        assert (
            await line["publish"].post("/providers", json=builders.provider(), headers=API)
        ).status_code == 201
        r = await line["publish"].post("/providers/2FR/sites", json=builders.site(), headers=API)
        assert r.status_code == 201, r.text
        r = await line["publish"].post(
            "/providers/2FR/courses", json=builders.course(), headers=API
        )
        assert r.status_code == 201, r.text
        await line.control.sync()
        found = (await line["find"].get("/courses", params={"subject": "W1"})).json()
        assert [c["code"] for c in found["courses"]] == ["3GTY"]
        print(await line.control.advance(by="1d"))


async def test_docs_are_served_without_reaching_the_internet(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        page = await line["gias"].get("/docs")
        assert page.status_code == 200
        assert "/static/swagger-ui/swagger-ui-bundle.js" in page.text
        assert "cdn." not in page.text
        script = await line["gias"].get("/static/swagger-ui/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert len(script.content) > 100_000
        assert (await line["gias"].get("/openapi.json")).json()["info"]["title"] == (
            "Get information about schools"
        )
