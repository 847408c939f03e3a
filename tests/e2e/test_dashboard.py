"""The dashboard in a browser against a running line: Debian's Chromium, driven by Playwright."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from serviceline.dashboard.process import RunningDashboard, start_dashboard
from serviceline.launcher import LineConfig, RunningLine, start_line
from serviceline.testing import ADMIN_TOKEN, API, API_TOKEN, ROOT
from serviceline.topology import LINE, Kind
from tests import builders

pytestmark = pytest.mark.e2e
NAMES = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM]
SHOTS = ROOT / "test-output" / "dashboard"
APPLY_COURSES = "publish.course.apply"
# an advance runs every service's due jobs, then the drift is checked again
SLOW = 60_000


@pytest.fixture
def line(tmp_path: Path, port_offset: int) -> Iterator[tuple[RunningLine, RunningDashboard]]:
    config = LineConfig(
        tmp_path, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, port_offset=port_offset
    )
    running = start_line(config, NAMES)
    try:
        dashboard = start_dashboard(config, settings={"poll_seconds": 0.5})
        try:
            yield running, dashboard
        finally:
            dashboard.stop()
    finally:
        running.stop()


def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    """What the viewer sees, or with `full_page` the whole page, as a PNG for people to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=full_page)


def publish(line: RunningLine, path: str) -> str:
    return line.urls()["publish"] + path


def overflowing_labels(page: Page) -> list[str]:
    """Text on the picture that runs past the box drawn for it, with the font the page uses."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('.edge')].flatMap(edge => {
            const row = edge.querySelector('rect.row').getBBox();
            return [...edge.querySelectorAll('text')]
                .filter(text => text.getBBox().x + text.getBBox().width > row.x + row.width)
                .map(text => text.textContent);
        })"""
    )
    return found


def test_the_line_live_with_its_drift(
    line: tuple[RunningLine, RunningDashboard], browser: Browser
) -> None:
    running, dashboard = line
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(dashboard.url)
    for service in LINE.services:
        expect(page.locator(f'[data-service="{service.name}"]')).to_be_visible()
    for edge in LINE.edges:
        expect(page.locator(f'[data-edge="{edge.name}"]')).to_be_visible()
    expect(page.locator('[data-service="sits"]')).to_contain_text("not running")
    assert overflowing_labels(page) == []
    page.evaluate("window.sameDocument = true")
    shoot(page, "1-line-1280x800")
    shoot(page, "1-line-whole-page", full_page=True)

    with httpx.Client() as client:
        client.post(publish(running, "/providers"), json=builders.provider(), headers=API)
        client.post(publish(running, "/providers/2FR/sites"), json=builders.site(), headers=API)
        made = client.post(
            publish(running, "/providers/2FR/courses"), json=builders.course(), headers=API
        )
        assert made.status_code == 201, made.text
        course = made.json()

        page.get_by_role("button", name="Advance the clock by 1 hour").click()
        expect(page.locator("#clock-now")).to_have_text("Mon 5 Oct 2026, 01:00", timeout=SLOW)
        expect(page.locator("#status")).to_contain_text("Moved the clock 1h on", timeout=SLOW)
        courses = page.locator(f'[data-edge="{APPLY_COURSES}"]')
        expect(courses).to_have_attribute("data-state", "in_sync", timeout=SLOW)

        renamed = {"name": "Art, Craft and Design"}
        patched = client.patch(
            publish(running, f"/courses/{course['uuid']}"), json=renamed, headers=API
        )
        assert patched.status_code == 200, patched.text
    expect(courses).to_have_attribute("data-state", "stale", timeout=SLOW)
    expect(courses).to_contain_text("1 stale")
    shoot(page, "2-publish-to-apply-stale")

    courses.locator("rect.row").click()
    heading = page.locator("#detail-heading")
    expect(heading).to_have_text("course: Publish → Apply")
    expect(heading).to_be_focused()
    difference = page.locator("table.differences tbody tr")
    expect(difference).to_have_count(1)
    expect(difference).to_contain_text(course["uuid"])
    expect(difference.locator("td").nth(2)).to_have_text("name")
    expect(difference.locator("td").nth(3)).to_have_text("Art, Craft and Design")
    expect(difference.locator("td").nth(4)).to_have_text("Art and Design")
    shoot(page, "3-the-field-difference")

    page.get_by_role("button", name="Run this edge now").click()
    expect(courses).to_have_attribute("data-state", "in_sync", timeout=SLOW)
    expect(page.locator("#detail")).to_contain_text("every copied record matches")
    shoot(page, "4-in-sync-after-the-sync")
    assert page.evaluate("window.sameDocument") is True  # refreshed in place, never reloaded

    apply = page.locator('[data-service="apply"]')
    apply.focus()
    page.keyboard.press("Enter")
    expect(heading).to_have_text("Apply: Apply for teacher training")
    expect(page.locator("#detail")).to_contain_text("Copies, and from whom")
    expect(page).to_have_url(f"{dashboard.url}/?service=apply")


def test_a_narrow_screen_scrolls_the_picture_not_the_page(
    line: tuple[RunningLine, RunningDashboard], browser: Browser
) -> None:
    _, dashboard = line
    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(f"{dashboard.url}/?edge={APPLY_COURSES}")
    expect(page.locator("#detail-heading")).to_have_text("course: Publish → Apply")
    courses = page.locator(f'[data-edge="{APPLY_COURSES}"]')
    expect(courses).not_to_have_attribute("data-state", "unchecked", timeout=SLOW)
    expect(page.get_by_role("button", name="Advance the clock by 1 day")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    graph = page.locator(".graph")
    assert graph.evaluate("region => region.scrollWidth > region.clientWidth")
    shoot(page, "5-narrow-400")
    shoot(page, "5-narrow-400-whole-page", full_page=True)
