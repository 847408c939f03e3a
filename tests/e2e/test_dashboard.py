"""The dashboard in a browser against a running line: Debian's Chromium, driven by Playwright."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from lines.becoming_a_teacher.topology import LINE
from serviceline.dashboard.process import RunningDashboard
from serviceline.model.topology import Kind
from serviceline.stack.launcher import RunningLine
from serviceline.testing import ADMIN_TOKEN, API, ROOT, line_and_dashboard
from tests import builders

pytestmark = pytest.mark.e2e
NAMES = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM]
SHOTS = ROOT / "test-output" / "dashboard"
APPLY_COURSES = "publish.course.apply"
# an advance runs every service's due jobs, then the drift is checked again
SLOW = 60_000


@pytest.fixture
def line(tmp_path: Path, port_offset: int) -> Iterator[tuple[RunningLine, RunningDashboard]]:
    with line_and_dashboard(tmp_path, NAMES, port_offset) as both:
        yield both


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
    shoot(page, "1-line-1280x800")
    for above in ("#legend", "#as-of", "#clock-now"):
        expect(page.locator(above)).to_be_in_viewport()  # above the fold at 1280x800
    # read in one script: the live refresh swaps the picture, and a locator may catch it between
    top, bottom = page.evaluate(
        "() => { const box = document.querySelector('svg.picture').getBoundingClientRect();"
        " return [box.top, box.bottom]; }"
    )
    assert 0 <= top < bottom <= 800  # the whole line, whatever its shape
    page.evaluate("window.sameDocument = true")
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


def test_a_narrow_screen_lists_the_edges_by_state_first_and_never_scrolls_sideways(
    line: tuple[RunningLine, RunningDashboard], browser: Browser
) -> None:
    running, dashboard = line
    with httpx.Client() as client:
        made = client.post(publish(running, "/providers"), json=builders.provider(), headers=API)
        assert made.status_code == 201, made.text
    page = browser.new_page(viewport={"width": 400, "height": 800})
    page.goto(f"{dashboard.url}/?edge={APPLY_COURSES}")
    expect(page.locator("#detail-heading")).to_have_text("course: Publish → Apply")
    listed = page.locator("#by-state")
    expect(listed).to_be_visible()
    first = listed.locator("h3").first
    expect(first).to_contain_text("missing")  # the provider not yet copied: worst first
    by_state, picture = page.evaluate(
        "() => ['#by-state', '#line'].map(id => document.querySelector(id)"
        ".getBoundingClientRect().top)"
    )
    assert by_state < picture
    expect(page.get_by_role("button", name="Advance the clock by 1 day")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    graph = page.locator(".graph")
    assert graph.evaluate("region => region.scrollWidth <= region.clientWidth")
    shoot(page, "5-narrow-400")
    shoot(page, "5-narrow-400-whole-page", full_page=True)
    page.get_by_role("button", name="Zoom in").click()
    # a refresh may swap the picture in as the click lands: the new one takes the zoom too
    page.wait_for_function(
        "() => { const region = document.querySelector('.graph');"
        " return region.scrollWidth > region.clientWidth; }"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    shoot(page, "6-narrow-400-zoomed")


def lit(page: Page) -> list[str]:
    found: list[str] = page.evaluate(
        "[...document.querySelectorAll('.edge.lit, .node.lit')].map(e => e.id)"
    )
    return sorted(found)


def labels(page: Page) -> dict[str, float]:
    """Each label box's edges, with how opaque the box is drawn."""
    found: dict[str, float] = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('svg.picture .label')].map("
        "e => [e.dataset.edges, Number(getComputedStyle(e).opacity)]))"
    )
    return found


def test_a_services_or_an_edges_path_lights_up_on_hover_and_focus(
    line: tuple[RunningLine, RunningDashboard], browser: Browser
) -> None:
    _, dashboard = line
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(dashboard.url)
    picture = page.locator("svg.picture")
    page.locator('[data-service="hesa"] rect').hover()
    expect(picture).to_have_class("picture tracing")
    traced = lit(page)
    assert {"node-hesa", "edge-hesa.itt_record.register", "node-register"} <= set(traced)
    assert "edge-publish.course.find" not in traced
    shoot(page, "7-path-of-hesa")
    edge = page.locator('[data-edge="gias.school.register"]')
    edge.focus()
    assert lit(page) == ["edge-gias.school.register", "node-gias", "node-register"]
    # the label boxes of every other edge are dimmed with their lines
    drawn = labels(page)
    assert drawn.pop("edge-gias.school.register") == 1
    assert drawn
    assert set(drawn.values()) == {0.15}
    shoot(page, "8-path-of-gias-to-register-by-keyboard")
    page.keyboard.press("Tab")
    assert "edge-gias.school.register" not in lit(page)


def test_a_first_load_shows_figures_at_the_clocks_time_or_says_how_old(
    line: tuple[RunningLine, RunningDashboard], browser: Browser
) -> None:
    running, dashboard = line
    with httpx.Client() as client:
        client.post(publish(running, "/providers"), json=builders.provider(), headers=API)
    # from outside the dashboard, as a user at a terminal moves it
    command = [str(Path(sys.executable).parent / "serviceline")]
    command += ["--port-offset", str(running.config.port_offset), "clock", "advance", "10m"]
    moved = subprocess.run(
        [*command, "--admin-token", ADMIN_TOKEN], capture_output=True, text=True, check=False
    )
    assert moved.returncode == 0, moved.stderr
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(dashboard.url)
    expect(page.locator("#clock-now")).to_have_text("Mon 5 Oct 2026, 00:10")
    said = page.locator("#as-of-text")
    expect(said).to_be_in_viewport()
    behind = page.locator("#as-of.behind")
    if behind.count():
        expect(said).to_contain_text("older than the clock")
    else:
        expect(said).to_have_text("Drift as of Mon 5 Oct 00:10, the clock's time")
    shoot(page, "9-first-load-after-a-clock-move")
