"""The kernel's admin logs: an owner's change log, a consumer's applied log and its copy runs."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.testing import ADMIN, API, in_process_line, names_field
from tests import builders

pytestmark = pytest.mark.anyio

FIND_COURSES = LINE.edge("publish.course.find")


async def pages(client: httpx.AsyncClient, path: str, rows: str, limit: int) -> list[Any]:
    """Every row of an admin log, read `limit` at a time from the start."""
    found: list[Any] = []
    after = 0
    while True:
        answer = await client.get(path, params={"after": after, "limit": limit}, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += body[rows]
        after = body["next"]
        if not body["has_more"]:
            return found


async def test_the_logs_page_by_id_and_say_what_each_side_did(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish, find = line["publish"], line["find"]
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        renamed = await publish.patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
        assert renamed.status_code == 200, renamed.text
        await line.control.run_edge(FIND_COURSES)

        changes = await pages(publish, "/admin/changelog", "changes", limit=1)
        course = [c for c in changes if c["entity"] == "course"]
        assert [(c["key"], c["op"], c["version"]) for c in course] == [
            (uuid, "upsert", 1),
            (uuid, "upsert", 2),
        ]
        assert set(course[0]) == {"seq", "entity", "key", "version", "op", "changed_at"}
        assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)

        applied = await pages(find, "/admin/applied", "applied", limit=1)
        assert [(a["edge"], a["key"], a["version"], a["op"]) for a in applied] == [
            (FIND_COURSES.name, uuid, 2, "upsert")
        ]
        assert applied[0]["read_at"] == applied[0]["applied_at"] == "2026-10-05T00:00:00Z"

        runs = await pages(find, "/admin/copy-runs", "runs", limit=5)
        assert [(r["edge"], r["mechanism"], r["upserted"], r["found_nothing"]) for r in runs] == [
            (FIND_COURSES.name, "feed", 1, False)
        ]
        assert runs[0]["requests"] == 1
        # the one page it read, read again: the same bytes
        page = await publish.get("/feed/course", params={"since": 0, "limit": 500})
        assert runs[0]["bytes"] == len(page.content)
        assert runs[0]["finished_at"] == "2026-10-05T00:00:00Z"


async def test_an_empty_log_answers_from_where_it_was_asked(state_dir: Path) -> None:
    async with in_process_line(["find"], state_dir) as line:
        answer = await line["find"].get("/admin/applied", params={"after": 7}, headers=ADMIN)
        assert answer.json() == {"applied": [], "next": 7, "has_more": False}


@pytest.mark.parametrize("path", ["/admin/changelog", "/admin/applied", "/admin/copy-runs"])
@pytest.mark.parametrize(
    ("params", "field"),
    [({"after": -1}, "after"), ({"after": "x"}, "after"), ({"limit": 0}, "limit")],
)
async def test_a_bad_page_is_refused_naming_the_field(
    state_dir: Path, path: str, params: dict[str, Any], field: str
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        answer = await publish.get(path, params={**params, "limit": 5001}, headers=ADMIN)
        assert answer.status_code == 422
        answer = await publish.get(path, params=params, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert names_field(answer, field)
        assert (await publish.get(path, headers=API)).status_code in (401, 403)
