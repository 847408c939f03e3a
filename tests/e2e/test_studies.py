"""A short study on a real seeded line: its results folder, its report, and a comparison."""

import csv
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from playwright.sync_api import Browser, expect

from lines.becoming_a_teacher.topology import LINE
from serviceline.model.topology import Kind
from serviceline.scenarios.runner import LineOptions
from serviceline.stack.launcher import free_port_offset
from serviceline.studies.report import write_compare, write_report
from serviceline.studies.results import compare_json, to_json, write_results
from serviceline.studies.runner import EventSource, Sources, StudyLine, run_study
from serviceline.studies.sources import change_lag
from serviceline.studies.spec import Study, arms, parse
from serviceline.testing import ADMIN_TOKEN, API_TOKEN, ROOT
from tests.builders import CourseEdits

pytestmark = pytest.mark.e2e
SCHEMA = json.loads((ROOT / "docs" / "study.schema.json").read_text(encoding="utf-8"))
CORE = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM]
SHOTS = ROOT / "test-output" / "study"
CHARTS = ("lag", "visibility", "drift", "lost-local-edits", "cost")
SHORT = {
    "title": "six hours of course edits, Publish failing and Find down for a while",
    "services": CORE,
    "span": "6h",
    "sample_every": "3h",
    "faults": [
        {"service": "publish", "kind": "fail", "every": "0 2 * * *", "lasting": "1h"},
        {"service": "find", "kind": "down", "every": "0 4 * * *", "lasting": "30m"},
    ],
    "variants": {
        "polled": {"overrides": {"publish.course.find": "updated_since@10m"}},
        "feed": {
            "overrides": {
                "publish.course.find": "feed@10m",
                "publish.course.apply": "feed@10m",
                "dqt.teacher.register": "feed",
            }
        },
    },
}
STUDY = parse(SHORT, "short", "short")


def course_edits(line: StudyLine) -> EventSource:
    moments = [line.start + timedelta(minutes=m) for m in (30, 90, 150, 210, 270, 330)]
    return CourseEdits(line.clients["publish"], line.api_token, moments)


SOURCES = Sources(events=course_edits, lag=change_lag)


def options(state_dir: Path) -> LineOptions:
    return LineOptions(
        state_dir=state_dir,
        port_offset=free_port_offset(),
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
    )


def studied(study: Study, state_dir: Path, variants: list[str] | None = None) -> list[Any]:
    async def run() -> list[Any]:
        return [
            to_json(await run_study(study, arm, options(state_dir), SOURCES))
            for arm in arms(study, variants)
        ]

    return anyio.run(run)


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study's feed variant, run once for the tests of its folder and the comparison."""
    state_dir = tmp_path_factory.mktemp("study")
    (results,) = studied(STUDY, state_dir, ["feed"])
    folder = state_dir / "feed"
    write_results(results, folder)
    write_report(results, folder)
    return folder


def read(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    return found


def test_the_results_follow_the_documented_schema(results_folder: Path) -> None:
    checker = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = [f"{e.json_path}: {e.message}" for e in checker.iter_errors(read(results_folder))]
    assert errors == []


def test_the_line_ran_the_span_with_its_events_and_faults(results_folder: Path) -> None:
    results = read(results_folder)
    assert results["span"]["seconds"] == 6 * 3600
    assert [s["at"][11:16] for s in results["samples"]] == ["00:00", "03:00", "06:00"]
    # the delete at 02:30 meets Publish failing on purpose
    assert results["events"]["counts"] == {"course_renamed": 4, "course_deleted": 1}
    assert results["events"]["failures"] == {"course_deleted": 1}
    assert (results["headline"]["events"], results["headline"]["refused_events"]) == (5, 1)
    publish, find = results["faults"]
    assert publish["windows"] == [["2026-10-05T02:00:00+00:00", "2026-10-05T03:00:00+00:00"]]
    assert find["windows"] == [["2026-10-05T04:00:00+00:00", "2026-10-05T04:30:00+00:00"]]
    failed = results["jobs"]["find publish.course.find"]["failed"]
    assert failed >= 1, "find's polls fail while Publish answers 503"


def test_lag_and_cost_are_reported_per_edge(results_folder: Path) -> None:
    edges = read(results_folder)["lag"]["edges"]
    # an edge driven by the consumer's own events keeps no runs to measure
    studied_edges = {e.name for e in LINE.edges if {e.owner, e.consumer} <= set(CORE)}
    assert set(edges) == studied_edges - {"dqt.teacher.register"}
    find = edges["publish.course.find"]
    assert find["cost"]["runs"] >= 6 * 6 - 3, "a poll every ten minutes, none while Find is down"
    assert 0 < find["cost"]["empty_runs"] < find["cost"]["runs"]
    # Register takes a snapshot of courses at 03:00: the edits after it wait at 06:00
    assert edges["publish.course.register"]["pending"] >= 1


def test_every_metric_has_its_csv(results_folder: Path) -> None:
    def rows(name: str) -> list[dict[str, str]]:
        with (results_folder / name).open(encoding="utf-8") as table:
            return list(csv.DictReader(table))

    edges = set(read(results_folder)["lag"]["edges"])
    assert {row["edge"] for row in rows("lag.csv")} == edges
    assert {row["edge"] for row in rows("cost.csv")} == edges
    assert len(rows("visibility.csv")) == 11 * len(edges)
    drift = rows("drift.csv")
    assert {row["at"][11:16] for row in drift} == {"00:00", "03:00", "06:00"}
    assert sum(int(row["stale"]) + int(row["orphaned"]) for row in drift) > 0
    assert {row["edge"] for row in rows("lost_local_edits.csv")} >= {"gias.school.placements"}
    assert "publish.course" in {row["journey"] for row in rows("journeys.csv")}


def test_the_report_draws_every_chart_inline_and_as_a_file(results_folder: Path) -> None:
    page = (results_folder / "report.html").read_text(encoding="utf-8")
    for name in CHARTS:
        drawn = (results_folder / f"{name}.svg").read_text(encoding="utf-8")
        assert "<path" in drawn
        assert f"id='chart-{name}'" in page
    assert re.findall(r"""(?:src|href)=['"]?https?:|url\((?!#)""", page) == [], "fetches nothing"
    assert "<script" not in page


def test_drawing_again_gives_the_same_files(results_folder: Path, tmp_path: Path) -> None:
    write_report(read(results_folder), tmp_path)
    for name in [*(f"{chart}.svg" for chart in CHARTS), "report.html"]:
        assert (tmp_path / name).read_bytes() == (results_folder / name).read_bytes(), name


def orphaned(results: dict[str, Any], edge: str) -> int:
    count: int = results["samples"][-1]["edges"][edge]["counts"]["orphaned"]
    return count


def test_a_comparison_names_what_each_variant_changed_and_could_not(
    results_folder: Path, tmp_path: Path
) -> None:
    (polled,) = studied(STUDY, tmp_path, ["polled"])
    write_results(polled, tmp_path / "polled")
    feed = read(results_folder)
    compared = compare_json([polled, feed], [tmp_path / "polled", results_folder])
    page = write_compare(compared, tmp_path).read_text(encoding="utf-8")
    polled_arm, feed_arm = compared["arms"]
    assert (polled_arm["changed"], polled_arm["refused"]) == (["publish.course.find"], {})
    # Apply reads the same records from Publish's change feed instead of its API v1
    assert feed_arm["changed"] == ["publish.course.find", "publish.course.apply"]
    assert set(feed_arm["refused"]) == {"dqt.teacher.register"}
    assert set(compared["edges"]["publish.course.find"]) == {"polled", "feed"}
    # the course deleted at 05:30: updated_since never hears of it, a feed does
    assert orphaned(polled, "publish.course.find") == 1
    assert orphaned(feed, "publish.course.find") == 0
    assert orphaned(polled, "publish.course.apply") == 1
    assert orphaned(feed, "publish.course.apply") == 0
    assert "could not be changed" in page
    assert page.count("<svg") == 3


def test_the_report_opens_offline_with_every_chart_drawn(
    results_folder: Path, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto((results_folder / "report.html").as_uri())
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name in CHARTS:
        figure = page.locator(f"#chart-{name}")
        expect(figure.locator("svg")).to_be_visible()
        assert figure.locator("svg path").count() > 5, f"{name} draws nothing"
        box = figure.locator("svg").bounding_box()
        assert box is not None, name
        assert (box["width"], box["height"]) > (400, 150), name
        figure.screenshot(path=SHOTS / f"{name}.png")
    page.screenshot(path=SHOTS / "report.png", full_page=True)
    assert [url for url in asked if not url.startswith("file://")] == []
