"""The dashboard's trace page: one record's waterfall, reached from an edge's differences."""

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serviceline.testing import ADMIN, API, in_process_line
from tests import builders
from tests.dashboard.test_dashboard import dashboard_of

pytestmark = pytest.mark.anyio
START = datetime(2026, 10, 5, tzinfo=UTC)


async def test_a_differing_key_links_to_its_trace_and_the_trace_draws_each_copy(
    state_dir: Path,
) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.advance(to=START + timedelta(minutes=15))
        renamed = await line["publish"].patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
        assert renamed.status_code == 200, renamed.text
        await board.look(check=True)
        edge_page = html.unescape(
            (await dashboard.get("/", params={"edge": "publish.course.apply"})).text
        )
        assert f'href="/trace?entity=course&key={uuid}"' in edge_page

        await line.control.advance(to=START + timedelta(minutes=20))
        page = await dashboard.get("/trace", params={"entity": "course", "key": uuid})
        assert page.status_code == 200, page.text
        text = html.unescape(page.text)
        # Apply held version 1 from 00:10 and version 2 from 00:20; Find is not running
        assert 'data-hop="publish.course.apply"' in text
        assert "the Mon 05 Oct 00:20 run (updated_since, cron */10 * * * *)" in text
        assert "find is not running: its copy is not traced." in text
        assert 'class="bar b-version" style="left: 50.0%; width: 50.0%"' in text
        assert 'class="bar b-waiting" style="left: 75.0%; width: 25.0%"' in text


async def test_a_delay_a_past_fault_caused_is_labelled_on_the_page(state_dir: Path) -> None:
    """Publish fails from 00:05 until cleared at 00:25: Apply's 00:10 and 00:20 runs fail."""
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.advance(to=START + timedelta(minutes=5))
        fail = {"kind": "fail"}
        assert (await line["publish"].post("/admin/faults", json=fail, headers=ADMIN)).is_success
        await line.control.advance(to=START + timedelta(minutes=25))
        assert (await line["publish"].delete("/admin/faults", headers=ADMIN)).is_success
        await line.control.advance(to=START + timedelta(minutes=40))
        page = await dashboard.get("/trace", params={"entity": "course", "key": uuid})
        assert page.status_code == 200, page.text
        text = html.unescape(page.text)
        assert "<h3>Faults on this hop</h3>" in text
        assert "delayed by fail on publish from Mon 05 Oct 00:05 to Mon 05 Oct 00:25" in text


async def test_a_bad_entity_is_refused_and_an_unknown_key_said_so(state_dir: Path) -> None:
    async with (
        in_process_line(["publish"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        refused = await dashboard.get("/trace", params={"entity": "courses", "key": "x"})
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("entity:")
        unknown = await dashboard.get("/trace", params={"entity": "course", "key": "nope"})
        assert unknown.status_code == 404
        assert "publish logged no change of course" in unknown.text
        empty = await dashboard.get("/trace")
        assert empty.status_code == 200
        assert 'name="key"' in empty.text
