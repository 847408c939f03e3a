"""The trace page in Chromium: a differing key followed through the line, as a waterfall."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from serviceline.dashboard.process import RunningDashboard
from serviceline.stack.launcher import RunningLine
from serviceline.testing import API, line_and_dashboard
from tests import builders
from tests.e2e.test_dashboard import SLOW, shoot

pytestmark = pytest.mark.e2e
APPLY_COURSES = "publish.course.apply"


@pytest.fixture
def course_line(tmp_path: Path, port_offset: int) -> Iterator[tuple[RunningLine, RunningDashboard]]:
    """Publish and the two services copying its courses every few minutes, and the dashboard."""
    with line_and_dashboard(tmp_path, ["publish", "find", "apply"], port_offset) as both:
        yield both


def test_a_stale_key_clicked_shows_its_versions_on_every_copy(
    course_line: tuple[RunningLine, RunningDashboard], browser: Browser
) -> None:
    running, dashboard = course_line
    publish = running.urls()["publish"]
    with httpx.Client() as client:
        client.post(f"{publish}/providers", json=builders.provider(), headers=API)
        client.post(f"{publish}/providers/2FR/sites", json=builders.site(), headers=API)
        made = client.post(f"{publish}/providers/2FR/courses", json=builders.course(), headers=API)
        assert made.status_code == 201, made.text
        uuid = made.json()["uuid"]
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{dashboard.url}/?edge={APPLY_COURSES}")
        page.get_by_role("button", name="Advance the clock by 1 hour").click()
        expect(page.locator("#clock-now")).to_have_text("Mon 5 Oct 2026, 01:00", timeout=SLOW)
        renamed = client.patch(f"{publish}/courses/{uuid}", json={"name": "Art"}, headers=API)
        assert renamed.status_code == 200, renamed.text

    courses = page.locator(f'[data-edge="{APPLY_COURSES}"]')
    expect(courses).to_have_attribute("data-state", "stale", timeout=SLOW)
    page.locator("table.differences").get_by_role("link", name=uuid).first.click()
    expect(page).to_have_url(f"{dashboard.url}/trace?entity=course&key={uuid}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(uuid)
    apply = page.locator('[data-hop="publish.course.apply"]')
    expect(apply.locator(".b-version")).to_have_count(1)
    # version 1 on its way from 00:00 to 00:10, and version 2, written at 01:00, still
    expect(apply.locator(".b-waiting")).to_have_count(2)
    hop = page.locator("section.hop", has=page.locator("code", has_text=APPLY_COURSES))
    expect(hop).to_contain_text("waits for the run due Mon 05 Oct 01:10")

    page.goto(dashboard.url)
    page.get_by_role("button", name="Advance the clock by 1 hour").click()
    expect(page.locator("#clock-now")).to_have_text("Mon 5 Oct 2026, 02:00", timeout=SLOW)
    page.goto(f"{dashboard.url}/trace")
    page.get_by_label("Key").fill(uuid)
    page.get_by_role("button", name="Trace").click()
    expect(apply.locator(".b-version")).to_have_count(2)
    expect(hop).to_contain_text("the Mon 05 Oct 01:10 run (updated_since, cron */10 * * * *)")
    find = page.locator("section.hop", has=page.locator("code", has_text="publish.course.find"))
    expect(find).to_contain_text("the Mon 05 Oct 01:05 run (feed, cron */5 * * * *)")
    expect(page.locator('[data-hop="publish.course.register"]')).to_contain_text("not running")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shoot(page, "5-trace-of-a-renamed-course")
    shoot(page, "5-trace-of-a-renamed-course-whole-page", full_page=True)
