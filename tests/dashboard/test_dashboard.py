"""The dashboard: its layout computed from the topology, its words, and its pages over a line."""

import contextlib
import html
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.drift import EdgeDrift, Lag, read_history
from serviceline.audit.findings import CLASSES
from serviceline.dashboard.app import create_app
from serviceline.dashboard.board import Board
from serviceline.dashboard.layout import ROW_LINES, Box, Layout, columns, layout, row_height
from serviceline.dashboard.settings import DashboardSettings
from serviceline.dashboard.views import (
    EdgeView,
    ScenarioError,
    by_state,
    chart,
    edge_views,
    freshness,
    graph_view,
    history_charts,
    read_scenario,
    row_counts,
    schedule_words,
    since,
    state_of,
    traced,
)
from serviceline.model.topology import Kind
from serviceline.testing import ADMIN_TOKEN, API, AUDITOR_TOKEN, LineUnderTest, in_process_line
from tests import builders

APPLY_COURSES = "publish.course.apply"
PICTURE = layout(LINE)


def overlaps(one: Box, other: Box) -> bool:
    return (
        one.x < other.x + other.width
        and other.x < one.x + one.width
        and one.y < other.y + other.height
        and other.y < one.y + one.height
    )


def boxes(picture: Layout) -> list[Box]:
    return [*picture.nodes.values(), *picture.labels]


def test_every_service_is_drawn_once_inside_its_group() -> None:
    assert set(PICTURE.nodes) == {service.name for service in LINE.services}
    groups = {group.kind: group for group in PICTURE.groups}
    assert [" ".join(groups[kind].title) for kind in Kind] == [
        "BECOMING A TEACHER SERVICES",
        "THIRD PARTIES",
        "STUDENT RECORD SYSTEMS",
    ]
    for name, node in PICTURE.nodes.items():
        group = groups[LINE.service(name).kind]
        assert group.x <= node.x, name
        assert node.x + node.width <= group.x + group.width, name
        assert group.y <= node.y, name
        assert node.y + node.height <= group.y + group.height, name


def test_columns_follow_the_data_owners_first() -> None:
    column = columns(LINE)
    assert column["gias"] == column["dqt"] == column["hesa"] == 0
    assert column["publish"] == 1
    assert column["find"] == column["apply"] == column["placements"] == column["claims"] == 2
    assert {column[name] for name in ("sits", "banner", "oracle", "thesis")} == {4}
    for edge in LINE.edges:
        assert column[edge.owner] < column[edge.consumer], edge.name


def test_no_box_overlaps_another() -> None:
    drawn = boxes(PICTURE)
    for i, one in enumerate(drawn):
        for other in drawn[i + 1 :]:
            assert not overlaps(one, other), (one, other)


def test_every_copy_runs_from_its_owner_through_its_own_labelled_row_to_its_consumer() -> None:
    rows = {edge.name: row for label in PICTURE.labels for edge, row in label.rows}
    assert sorted(rows) == sorted(edge.name for edge in LINE.edges)
    for route in PICTURE.copies:
        assert route.edge is not None
        owner, consumer = PICTURE.nodes[route.edge.owner], PICTURE.nodes[route.edge.consumer]
        assert route.points[0][0] == owner.x + owner.width
        assert owner.y < route.points[0][1] < owner.y + owner.height
        assert route.points[-1][0] == consumer.x
        assert consumer.y < route.points[-1][1] < consumer.y + consumer.height
        row = rows[route.edge.name]
        assert (row.x, row.y + row.height / 2) in route.points


def test_no_line_crosses_a_box_but_its_own_row() -> None:
    rows = {edge.name: row for label in PICTURE.labels for edge, row in label.rows}
    drawn = boxes(PICTURE)
    for route in (*PICTURE.copies, *PICTURE.commands):
        own = rows[route.edge.name] if route.edge is not None else None
        for (x0, y0), (x1, y1) in pairwise(route.points):
            left, right = sorted((x0, x1))
            span = Box(left, min(y0, y1), right - left, abs(y1 - y0) or 0.1)
            for box in drawn:
                inside_own_label = own is not None and overlaps(span, own) and y0 == y1
                assert inside_own_label or not overlaps(span, box), (route, box)


def test_commands_a_whole_group_sends_are_one_line_from_the_group() -> None:
    targets = sorted(r.target for r in PICTURE.commands if r.source == Kind.RECORD_SYSTEM.value)
    assert targets == ["apply", "hesa", "register"]
    drawn = {(r.source, r.target) for r in PICTURE.commands}
    assert ("manage", "apply") in drawn
    assert ("register", "dqt") in drawn
    assert not any(r.source == "sits" for r in PICTURE.commands)


def test_each_row_is_as_tall_as_its_text_and_the_picture_grows_with_it() -> None:
    rows = {edge.name: row for label in PICTURE.labels for edge, row in label.rows}
    assert rows[APPLY_COURSES].height == row_height(ROW_LINES)
    taller = layout(LINE, {APPLY_COURSES: ROW_LINES + 3})
    grown = {edge.name: row for label in taller.labels for edge, row in label.rows}
    assert grown[APPLY_COURSES].height == row_height(ROW_LINES + 3)
    assert taller.height > PICTURE.height
    drawn = boxes(taller)
    for i, one in enumerate(drawn):
        for other in drawn[i + 1 :]:
            assert not overlaps(one, other), (one, other)


def test_no_text_on_the_picture_is_cut_short_however_much_an_edge_drifts() -> None:
    worst = drift(in_sync=1, stale=2400, missing=24000, diverged=130, orphaned=99, conflicting=7)
    views = {e.name: EdgeView(e, "diverged", worst) for e in LINE.edges}
    graph = graph_view(
        LINE, layout(LINE, row_counts(views)), views, [s.name for s in LINE.services]
    )
    texts = [t.text for row in graph.rows for t in (row.entity, *row.lines)]
    texts += [t.text for node in graph.nodes for t in node.lines] + [h.text for h in graph.headers]
    assert not [text for text in texts if "…" in text]
    row = next(r for r in graph.rows if r.view.edge.name == APPLY_COURSES)
    said = " · ".join(t.text for t in row.lines if t.kind == "figures")
    assert said == worst_figures()
    assert all(row.y < t.y < row.y + row.height for t in row.lines)


def worst_figures() -> str:
    return "130 diverged · 7 conflicting · 99 orphaned · 24000 missing · 2400 stale · lag 2.0 h"


def test_a_path_names_a_services_copies_and_their_other_ends() -> None:
    traced_ = traced(LINE, "find").split()
    assert "edge-publish.course.find" in traced_
    assert "node-publish" in traced_
    assert not [t for t in traced_ if t.startswith("node-") and t != "node-publish"]
    graph = graph_view(LINE, PICTURE, edge_views(LINE, None, []), [])
    row = next(r for r in graph.rows if r.view.edge.name == "gias.school.register")
    assert row.traced == "node-gias node-register"


def test_edges_are_listed_by_state_the_worst_first() -> None:
    views = edge_views(LINE, None, ["publish", "apply"])
    views[APPLY_COURSES] = EdgeView(LINE.edge(APPLY_COURSES), "stale", drift(in_sync=1, stale=1))
    views["publish.site.apply"] = EdgeView(LINE.edge("publish.site.apply"), "in_sync", drift())
    states = [state for state, _ in by_state(views)]
    assert states == ["stale", "down", "unchecked", "in_sync"]
    assert [v.edge.name for v in by_state(views)[0][1]] == [APPLY_COURSES]


def test_the_figures_say_how_old_they_are_next_to_the_clock() -> None:
    at = datetime(2026, 10, 5, tzinfo=UTC)
    assert freshness(None, at) == ("No drift figures yet: the line is being checked", True)
    assert freshness(at, at) == ("Drift as of Mon 5 Oct 00:00, the clock's time", False)
    later = at + timedelta(minutes=10)
    assert freshness(at, later) == (
        "Drift as of Mon 5 Oct 00:00: 10 min older than the clock",
        True,
    )


def sample(at: datetime, stale: int, waiting: int) -> dict[str, object]:
    figures = {"counts": {"in_sync": 1, "stale": stale}, "lag_changes": waiting}
    return {"at": at.isoformat(), "edges": {APPLY_COURSES: figures}, "comparisons": {}}


def test_drift_over_time_is_per_edge_and_class_with_its_lag_over_a_chosen_range() -> None:
    start = datetime(2026, 10, 5, tzinfo=UTC)
    samples = [sample(start + timedelta(days=d), d, d) for d in range(10)]
    assert len(since(samples, "all")) == 10
    assert since(samples, "1w")[0]["at"][:10] == "2026-10-07"
    assert len(since(samples, "1d")) == 2
    [(edge, drawn)] = history_charts(since(samples, "1d"), [APPLY_COURSES, "publish.course.find"])
    assert edge == APPLY_COURSES
    assert {(s.name, s.last) for s in drawn.series} == {("stale", 9), ("lag", 9)}
    assert history_charts(samples[:1], [APPLY_COURSES]) == []  # nothing drifted or waited


def test_a_line_read_through_draws_no_copy_for_it() -> None:
    picture = layout(LINE.reading_through("find", ["course"]))
    drawn = {route.edge.name for route in picture.copies if route.edge is not None}
    assert "publish.course.find" not in drawn
    assert "publish.provider.find" in drawn


@pytest.mark.parametrize(
    ("cron", "words"),
    [
        ("*/10 * * * *", "every 10 min"),
        ("0 * * * *", "hourly"),
        ("30 2 * * *", "daily 02:30"),
        ("30 2 * * 0", "Sun 02:30"),
        ("59 0 * * 6", "Sat 00:59"),
        ("0 */4 * * *", "every 4 h"),
        ("0 8-23/2 * * *", "every 2 h, 8\N{EN DASH}23 h"),
        ("0 0 1 * *", "0 0 1 * *"),
        (None, "on events"),
    ],
)
def test_schedules_in_words(cron: str | None, words: str) -> None:
    assert schedule_words(cron) == words


def drift(**counts: int) -> EdgeDrift:
    return EdgeDrift(
        APPLY_COURSES,
        "publish",
        "apply",
        "course",
        "updated_since",
        {**dict.fromkeys(CLASSES, 0), **counts},
        [],
        Lag(counts.get("stale", 0), None, 7200.0 if counts.get("stale") else None),
    )


def test_the_worst_class_is_the_edge_state_and_every_class_is_counted() -> None:
    edge = LINE.edge(APPLY_COURSES)
    assert state_of({"in_sync": 3, "stale": 1, "missing": 2}) == "missing"
    assert state_of({"in_sync": 3, "stale": 1, "diverged": 1}) == "diverged"
    assert state_of({"in_sync": 3}) == "in_sync"
    drifting = EdgeView(edge, "missing", drift(in_sync=3, stale=1, missing=2))
    assert drifting.figures == "2 missing · 1 stale · lag 2.0 h"
    assert drifting.lag == "1 change waiting, the oldest since 2.0 h"
    assert EdgeView(edge, "in_sync", drift(in_sync=3)).figures == "3 in sync"
    down = EdgeView(edge, "down", None, "apply is not running")
    assert (down.figures, down.summary) == ("apply is not running", "not running")


def test_a_chart_steps_through_the_samples_on_the_simulated_clock() -> None:
    start = datetime(2026, 10, 5, tzinfo=UTC)
    times = [start, start + timedelta(hours=1), start + timedelta(hours=2)]
    drawn = chart(times, {"stale": [0, 4, 1]}, {"stale": "stale"}, width=200, height=100)
    [series] = drawn.series
    assert series.last == 1
    assert series.path == "M40.0,74.0H114.0V24.4H188.0V61.6"
    assert [tick.label for tick in drawn.y_ticks] == ["0", "2.5", "5"]
    assert [tick.label for tick in drawn.x_ticks] == [
        "Mon 5 Oct 00:00",
        "Mon 5 Oct 01:00",
        "Mon 5 Oct 02:00",
    ]


def test_the_last_scenario_run_is_read_from_the_state_folder(state_dir: Path) -> None:
    assert read_scenario(state_dir) is None
    path = state_dir / "scenarios" / "last.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ScenarioError, match=r"last\.json"):
        read_scenario(state_dir)
    path.write_text(json.dumps(scenario_run()))
    run = read_scenario(state_dir)
    assert run is not None
    assert [step.step for step in run.timeline] == ["rename a course", "sync"]
    assert run.timeline[0].drifting == [f"{APPLY_COURSES}: stale 1"]


def scenario_run() -> dict[str, object]:
    return {
        "scenario": "course-rename",
        "verdict": "fail",
        "seed": 7,
        "overrides": {"*": "feed"},
        "timeline": [
            {
                "at": "2026-10-05T00:00:00+00:00",
                "step": "rename a course",
                "changed": "publish course 3GTY name",
                "drift": {APPLY_COURSES: {"in_sync": 0, "stale": 1}},
                "ok": None,
            },
            {
                "at": "2026-10-05T00:10:00+00:00",
                "step": "sync",
                "changed": "",
                "drift": {APPLY_COURSES: {"in_sync": 1, "stale": 0}},
                "ok": False,
            },
        ],
        "failures": ["apply still shows the old name"],
        "duration_seconds": 1.5,
    }


async def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("not running", request=request)


@contextlib.asynccontextmanager
async def dashboard_of(
    line: LineUnderTest, state_dir: Path, **chosen: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Board]]:
    """The dashboard wired to the line's services; the others answer as services that are down.

    `chosen`: settings of the dashboard's own."""
    settings = DashboardSettings(
        state_dir=state_dir,
        admin_token=ADMIN_TOKEN,
        auditor_token=AUDITOR_TOKEN,
        poll_seconds=3600,
        **chosen,
    )
    down = httpx.MockTransport(refuse)
    transports = {s.name: line.transports.get(s.name, down) for s in LINE.services}
    app = create_app(settings, transports)
    async with app.router.lifespan_context(app):
        board: Board = app.state.board
        await board.look(check=True)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            yield client, board


async def read(client: httpx.AsyncClient, path: str, **params: str) -> str:
    """A page's text as a browser reads it, entities decoded."""
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return html.unescape(response.text)


def edge_state(page: str, edge: str) -> str:
    marker = f'data-edge="{edge}" data-state="'
    assert marker in page, edge
    return page.split(marker, 1)[1].split('"', 1)[0]


@pytest.mark.anyio
async def test_the_page_draws_every_service_and_edge_from_local_assets(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        page = await read(dashboard, "/")
        for service in LINE.services:
            assert f'data-service="{service.name}"' in page
        for edge in LINE.edges:
            assert f'data-edge="{edge.name}"' in page
        assert edge_state(page, APPLY_COURSES) == "in_sync"
        assert edge_state(page, "publish.course.find") == "down"
        assert "https://" not in page
        assert 'src="/static/dashboard.js"' in page
        for asset in ("dashboard.js", "dashboard.css"):
            assert (await dashboard.get(f"/static/{asset}")).status_code == 200


@pytest.mark.anyio
async def test_a_rename_shows_stale_with_both_values_then_in_sync_after_a_run(
    state_dir: Path,
) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        moved = await dashboard.post("/clock/advance", params={"by": "1h", "edge": APPLY_COURSES})
        assert moved.status_code == 303
        assert moved.headers["location"] == "/?edge=publish.course.apply"
        await board.idle()
        assert board.outcome is not None
        assert board.outcome.ok, board.outcome.text
        assert "Moved the clock 1h on to Mon 5 Oct 2026, 01:00" in board.outcome.text
        clock = await read(dashboard, "/fragments")
        assert "Mon 5 Oct 2026, 01:00" in clock
        assert edge_state(clock, APPLY_COURSES) == "in_sync"

        renamed = {"name": "Art, Craft and Design"}
        patched = await line["publish"].patch(f"/courses/{uuid}", json=renamed, headers=API)
        assert patched.status_code == 200, patched.text
        await board.look()
        page = await read(dashboard, "/", edge=APPLY_COURSES)
        assert edge_state(page, APPLY_COURSES) == "stale"
        differences = page.split('class="differences', 1)[1]
        assert "<code>name</code>" in differences
        assert "Art, Craft and Design" in differences
        assert "Art and Design" in differences

        ran = await dashboard.post("/edges/run", params={"edge": APPLY_COURSES})
        assert ran.status_code == 303
        await board.idle()
        page = await read(dashboard, "/fragments", edge=APPLY_COURSES)
        assert edge_state(page, APPLY_COURSES) == "in_sync"
        assert "every copied record matches" in page


@pytest.mark.anyio
async def test_a_service_shows_what_it_owns_and_copies_from_whom(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        page = await read(dashboard, "/fragments", service="apply")
        detail = page.split('id="detail"', 1)[1].split("</section>", 1)[0]
        assert "Apply: Apply for teacher training" in detail
        owns, copies, copied_by = detail.split("<h3>")[1:4]
        assert "candidate" in owns
        assert "application" in owns
        for entity in ("provider", "course", "site"):
            assert f">{entity}</a>" in copies
        assert copies.count('<td data-label="From">Publish</td>') == 3
        for consumer in ("Manage", "Register", "Tribal SITS"):
            assert consumer in copied_by


@pytest.mark.anyio
async def test_bad_input_is_refused_naming_the_field(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        refused = await dashboard.post("/clock/advance", params={"by": "soon"})
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("by:")
        unknown = await dashboard.post("/edges/run", params={"edge": "publish.course.nowhere"})
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith("edge:")
        evented = await dashboard.post("/edges/run", params={"edge": "dqt.teacher.register"})
        assert evented.status_code == 409
        assert evented.json()["detail"].startswith("edge:")
        missing = await dashboard.get("/", params={"service": "nowhere"})
        assert missing.status_code == 404
        assert missing.json()["detail"].startswith("service:")


@pytest.mark.anyio
async def test_one_action_at_a_time(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        first = await dashboard.post("/clock/advance", params={"by": "1d"})
        second = await dashboard.post("/clock/advance", params={"by": "1w"})
        assert (first.status_code, second.status_code) == (303, 303)
        assert board.outcome is not None
        assert board.outcome.text.startswith("Still moving the clock 1d on")
        page = await read(dashboard, "/fragments")
        assert "Moving the clock 1d on…" in page
        button = page.split('id="advance-1w"', 1)[1].split(">", 1)[0]
        assert "disabled" in button
        await board.idle()
        assert board.now == datetime(2026, 10, 6, tzinfo=UTC)


@pytest.mark.anyio
async def test_each_change_of_drift_is_sampled_once(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        await board.look(check=True)
        assert len(read_history(state_dir)) == 1
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        await board.look()
        samples = read_history(state_dir)
        assert len(samples) == 2
        assert samples[-1]["edges"][APPLY_COURSES]["counts"]["missing"] == 1
        page = await read(dashboard, "/")
        history = page.split('id="history"', 1)[1].split("</section>", 1)[0]
        for edge in (APPLY_COURSES, "publish.provider.apply", "publish.site.apply"):
            shown = history.split(f'data-history="{edge}"', 1)[1].split("</figure>", 1)[0]
            assert "missing: 1 now" in shown, edge
        one = await read(dashboard, "/", history=APPLY_COURSES, span="6h")
        history = one.split('id="history"', 1)[1].split("</section>", 1)[0]
        assert history.count("data-history=") == 1
        assert '<option value="6h" selected>' in history
        unknown = await dashboard.get("/", params={"history": "publish.course.nowhere"})
        assert unknown.status_code == 404
        assert unknown.json()["detail"].startswith("history:")
        span = await dashboard.get("/", params={"span": "1y"})
        assert span.status_code == 422
        assert span.json()["detail"][0]["loc"] == ["query", "span"]


@pytest.mark.anyio
async def test_the_last_scenario_run_or_its_absence_is_shown(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        assert "No scenario run yet" in await read(dashboard, "/")
        path = state_dir / "scenarios" / "last.json"
        path.parent.mkdir()
        path.write_text(json.dumps(scenario_run()))
        page = await read(dashboard, "/fragments")
        shown = page.split('id="scenario"', 1)[1].split("</section>", 1)[0]
        assert "course-rename" in shown
        assert "failed" in shown
        assert shown.index("rename a course") < shown.index("sync")
        assert "apply still shows the old name" in shown


@pytest.mark.anyio
async def test_a_line_that_is_not_running_is_said_so(state_dir: Path) -> None:
    settings = DashboardSettings(state_dir=state_dir, poll_seconds=3600)
    app = create_app(settings, {s.name: httpx.MockTransport(refuse) for s in LINE.services})
    async with app.router.lifespan_context(app):
        board: Board = app.state.board
        await board.look()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            page = await read(client, "/")
    assert "no service of the line answers" in page
    assert all(f'data-edge="{edge.name}" data-state="down"' in page for edge in LINE.edges)
    assert page.count('class="down-note"') == len(LINE.services)


def study_pointer(report: Path) -> dict[str, object]:
    headline = {
        "changes": 120,
        "delivered": 117,
        "superseded": 2,
        "never_delivered": 1,
        "pending": 0,
        "runs": 4000,
        "empty_runs": 3900,
        "skipped_runs": 0,
        "requests": 5100,
        "bytes": 2_000_000,
        "events": 130,
        "refused_events": 3,
        "worst_p95": {"edge": "publish.course.register", "seconds": 86400.0},
        "peak_drift": {"at": "2026-11-02T00:00:00+00:00", "keys": 42},
        "lost_local_edits": 7,
    }
    return {
        "kind": "run",
        "study": "cycle",
        "title": "A recruitment cycle",
        "span": {
            "start": "2026-10-05T00:00:00+00:00",
            "end": "2027-10-05T00:00:00+00:00",
            "seconds": 365 * 86400.0,
        },
        "report": str(report),
        "arms": [{"name": "cycle", "headline": headline}],
    }


@pytest.mark.anyio
async def test_the_last_study_is_shown_with_its_headline_and_report(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        assert "No study yet" in await read(dashboard, "/")
        assert (await dashboard.get("/studies/last/report.html")).status_code == 404
        folder = state_dir / "studies" / "cycle"
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<h1>the cycle's report</h1>", encoding="utf-8")
        (state_dir / "secret.txt").write_text("not the study's", encoding="utf-8")
        pointer = study_pointer(folder / "report.html")
        (state_dir / "studies" / "last.json").write_text(json.dumps(pointer))
        page = await read(dashboard, "/fragments")
        shown = page.split('id="study"', 1)[1].split("</section>", 1)[0]
        assert "A recruitment cycle" in shown
        assert "365d from 2026-10-05" in shown
        assert "1d (publish.course.register)" in shown  # the worst p95
        assert "42 (2026-11-02)" in shown
        assert 'href="/studies/last/report.html"' in shown
        assert "the cycle's report" in await read(dashboard, "/studies/last/report.html")
        escaped = await dashboard.get("/studies/last/..%2F..%2Fsecret.txt")
        assert escaped.status_code == 404
        (state_dir / "studies" / "last.json").write_text("{")
        assert "cannot be read" in await read(dashboard, "/fragments")


@pytest.mark.anyio
async def test_a_page_is_drawn_from_a_check_at_the_clocks_time_however_it_moved(
    state_dir: Path,
) -> None:
    async with (
        in_process_line(["publish", "apply"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, board),
    ):
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        await line.control.advance(by="10m")  # from outside the dashboard, as the CLI does
        page = await read(dashboard, "/")
        said = page.split('id="as-of-text">', 1)[1].split("<", 1)[0]
        assert said == "Drift as of Mon 5 Oct 00:10, the clock's time"
        assert board.report is not None
        assert board.report.at == datetime(2026, 10, 5, 0, 10, tzinfo=UTC)
        assert edge_state(page, APPLY_COURSES) == "in_sync"
        assert 'class="as-of behind"' not in page
