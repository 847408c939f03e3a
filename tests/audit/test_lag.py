"""The lag of every change: each owner change's fate on each edge, measured from the logs."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.lag import (
    VISIBILITY_GRID,
    LagCollector,
    LagLogs,
    LagReport,
    applied,
    default_journeys,
    measure,
    owner_change,
    run,
)
from serviceline.testing import API, in_process_line
from tests import builders

START = datetime(2026, 10, 5, tzinfo=UTC)
FIND = "publish.course.find"
APPLY = "publish.course.apply"
REGISTER = "publish.course.register"
SCHOOLS = "gias.school.publish"
RECRUITS = "apply.application.register"


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat()


def logs(
    changes: list[dict[str, Any]],
    rows: Sequence[dict[str, Any]] = (),
    runs: Sequence[dict[str, Any]] = (),
    owner: str = "publish",
) -> LagLogs:
    """The logs as a collector holds them; rows and runs numbered in the order given."""
    return LagLogs(
        [owner_change(owner, change) for change in changes],
        [applied({**row, "id": n}) for n, row in enumerate(rows, start=1)],
        [run({**row, "id": n}) for n, row in enumerate(runs, start=1)],
    )


def edge_json(report: LagReport, edge: str) -> dict[str, Any]:
    found: dict[str, Any] = report.to_json()["edges"][edge]
    return found


def report(collected: LagLogs, until: float = 60 * 24 * 30) -> LagReport:
    return measure(collected, LINE, START + timedelta(minutes=until), services=LINE_SERVICES)


LINE_SERVICES = ["publish", "find", "apply", "register", "gias"]


def test_percentiles_and_visibility_of_the_delivered_changes() -> None:
    keys = [f"c{n}" for n in range(5)]
    found = edge_json(
        report(
            logs(
                [builders.logged_change(k, 1, at(0), seq=n) for n, k in enumerate(keys)],
                [builders.applied_change(FIND, k, 1, at(n + 1)) for n, k in enumerate(keys)],
            )
        ),
        FIND,
    )
    assert (found["changes"], found["delivered"], found["pending"]) == (5, 5, 0)
    assert found["lag_seconds"] == {
        "p50": 180.0,
        "p95": pytest.approx(288.0),
        "p99": pytest.approx(297.6),
        "max": 300.0,
        "mean": 180.0,
    }
    shares = dict(found["visibility"])
    assert list(shares) == list(VISIBILITY_GRID)
    assert (shares[60], shares[300], shares[604800]) == (0.2, 1.0, 1.0)
    assert found["by_op"]["upsert"]["delivered"] == 5
    assert found["by_op"]["delete"]["changes"] == 0


def test_a_version_overtaken_before_it_arrived_is_superseded() -> None:
    found = edge_json(
        report(
            logs(
                [
                    builders.logged_change("c", 1, at(0)),
                    builders.logged_change("c", 2, at(1)),
                    builders.logged_change("c", 3, at(20)),
                ],
                [
                    builders.applied_change(FIND, "c", 2, at(5)),
                    builders.applied_change(FIND, "c", 3, at(25)),
                ],
                [builders.copy_run(FIND, at(5)), builders.copy_run(FIND, at(25))],
            )
        ),
        FIND,
    )
    assert (found["changes"], found["delivered"], found["superseded"]) == (3, 2, 1)
    assert found["lag_seconds"]["max"] == 300.0
    assert dict(found["visibility"])[300] == pytest.approx(2 / 3)


def deleted_course(edge: str, mechanism: str, *later: dict[str, Any]) -> LagLogs:
    """A course copied, then deleted at minute 3; the edge's runs every 10 minutes until 30."""
    rows = [builders.applied_change(edge, "c", 1, at(0)), *later]
    runs = [builders.copy_run(edge, at(m), mechanism) for m in (0, 10, 20, 30)]
    return logs(
        [builders.logged_change("c", 1, at(0)), builders.logged_change("c", 2, at(3), "delete")],
        rows,
        runs,
    )


def test_a_hard_delete_under_updated_since_is_never_delivered() -> None:
    found = edge_json(report(deleted_course(APPLY, "updated_since")), APPLY)
    assert found["by_op"]["delete"] | {"lag_seconds": None} == {
        "changes": 1,
        "delivered": 0,
        "superseded": 0,
        "never_delivered": 1,
        "pending": 0,
        "lag_seconds": None,
        "visibility": [[s, 0.0] for s in VISIBILITY_GRID],
    }


def test_a_hard_delete_under_a_feed_is_delivered_with_its_version() -> None:
    gone = builders.applied_change(FIND, "c", 2, at(10), "delete")
    found = edge_json(report(deleted_course(FIND, "feed", gone)), FIND)
    assert (found["by_op"]["delete"]["delivered"], found["never_delivered"]) == (1, 0)
    assert found["by_op"]["delete"]["lag_seconds"]["max"] == 420.0


def test_a_full_sync_after_updated_since_delivers_the_delete_it_could_not_see() -> None:
    collected = deleted_course(APPLY, "updated_since")
    # the weekly full sync at minute 60 removes the copy; its removals carry no version
    collected.runs.append(run(builders.copy_run(APPLY, at(60), "updated_since", id=9, full=True)))
    collected.applied.append(
        applied(builders.applied_change(APPLY, "c", None, at(60), "delete", id=9))
    )
    found = edge_json(report(collected), APPLY)
    assert (found["delivered"], found["never_delivered"]) == (2, 0)
    assert found["by_op"]["delete"]["lag_seconds"]["max"] == 57 * 60.0


def test_a_delete_not_yet_read_by_a_feed_is_pending() -> None:
    found = edge_json(report(deleted_course(FIND, "feed"), until=5), FIND)
    assert (found["pending"], found["never_delivered"]) == (1, 0)


def school_changes(*changes: tuple[int, float]) -> list[dict[str, Any]]:
    return [builders.logged_change("100000", v, at(m), entity="school", seq=v) for v, m in changes]


def test_a_versionless_snapshot_delivers_at_the_run_that_read_it() -> None:
    """GIAS's CSV carries no versions: a change to a column Publish does not copy leaves no
    applied row, yet the next snapshot to read it holds it when it finishes."""
    snapshot: dict[str, Any] = {"mechanism": "snapshot", "full": True}
    collected = logs(
        school_changes((1, 0), (2, 30), (3, 24 * 60 + 30)),
        [
            builders.applied_change(SCHOOLS, "100000", None, at(0)),
            # the third change renamed the school: the copy changed, read at 02:30 next day
            builders.applied_change(
                SCHOOLS, "100000", None, at(26 * 60 + 30), applied_at=at(26 * 60 + 40)
            ),
        ],
        [
            builders.copy_run(SCHOOLS, at(0), **snapshot),
            builders.copy_run(SCHOOLS, at(150), finished_at=at(160), **snapshot),
            builders.copy_run(SCHOOLS, at(26 * 60 + 30), finished_at=at(26 * 60 + 40), **snapshot),
        ],
        owner="gias",
    )
    found = edge_json(report(collected), SCHOOLS)
    assert (found["changes"], found["delivered"], found["superseded"]) == (3, 3, 0)
    # the first copied at once; each other read at 02:30 by a run that finished at 02:40
    lags = found["lag_seconds"]
    assert (lags["p50"], lags["max"], lags["mean"]) == (7800.0, 7800.0, 5200.0)


def test_a_versionless_incremental_run_delivers_the_keys_it_saw() -> None:
    collected = logs(
        [
            builders.logged_change("a1", 1, at(0), entity="application", seq=1),
            builders.logged_change("a1", 2, at(30), entity="application", seq=2),
            builders.logged_change("a2", 1, at(40), entity="application", seq=3),
        ],
        [builders.applied_change(RECRUITS, "a1", None, at(5))],
        [
            builders.copy_run(RECRUITS, at(5), "updated_since"),
            builders.copy_run(RECRUITS, at(65), "updated_since", seen=["a1"]),
        ],
        owner="apply",
    )
    found = edge_json(report(collected), RECRUITS)
    # a2 was never recruited: the run after it read the recruits and it was not among them
    assert (found["changes"], found["delivered"]) == (2, 2)
    assert found["lag_seconds"]["max"] == 35 * 60.0


def test_a_key_the_copy_never_held_counts_only_until_a_run_has_read_past_it() -> None:
    draft = [builders.logged_change("d", 1, at(0)), builders.logged_change("d", 2, at(10))]
    runs = [builders.copy_run(REGISTER, at(60), "snapshot", full=True)]
    waiting = edge_json(report(logs(draft, [], runs), until=30), REGISTER)
    assert (waiting["changes"], waiting["pending"], waiting["superseded"]) == (2, 1, 1)
    # Register's import read past both and took neither: a draft is not for Register
    assert edge_json(report(logs(draft, [], runs)), REGISTER)["changes"] == 0


def test_a_journey_arrives_when_its_last_edge_holds_the_change() -> None:
    collected = logs(
        [builders.logged_change("c", 1, at(0))],
        [
            builders.applied_change(FIND, "c", 1, at(5)),
            builders.applied_change(APPLY, "c", 1, at(10)),
            builders.applied_change(REGISTER, "c", 1, at(180)),
        ],
    )
    journey = report(collected).to_json()["journeys"]["publish.course"]
    assert journey["edges"] == [FIND, APPLY, REGISTER]
    assert (journey["changes"], journey["delivered"]) == (1, 1)
    assert journey["lag_seconds"]["max"] == 180 * 60.0
    assert dict(journey["visibility"])[3600] == 0.0


def test_default_journeys_follow_each_owner_entity_copied_more_than_once() -> None:
    journeys = default_journeys(LINE)
    assert journeys["publish.course"] == (FIND, APPLY, REGISTER)
    assert "dqt.teacher" in journeys  # placements, claims; Register's own events are not copies
    assert all(len(edges) > 1 for edges in journeys.values())


def test_cost_counts_every_run_the_empty_and_the_skipped() -> None:
    runs = [
        builders.copy_run(FIND, at(0), found_nothing=False, requests=2, bytes=900),
        builders.copy_run(FIND, at(5)),
        builders.copy_run(FIND, at(10), skipped=True),
    ]
    found = edge_json(report(logs([], [], runs)), FIND)
    assert found["cost"] == {
        "runs": 3,
        "empty_runs": 2,
        "skipped_runs": 1,
        "requests": 4,
        "bytes": 1100,
    }
    assert found["lag_seconds"] is None


def test_edges_of_services_not_collected_are_left_out() -> None:
    found = measure(logs([], [], []), LINE, START, services=["publish", "find"]).to_json()
    assert set(found["edges"]) == {"publish.provider.find", FIND}
    assert found["journeys"] == {}


@pytest.mark.anyio
async def test_a_course_change_reaches_find_by_feed_and_apply_by_updated_since(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        publish = line["publish"]
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        for minute, name in ((7, "Art"), (12, "Fine Art")):
            await line.control.advance(to=START + timedelta(minutes=minute))
            renamed = await publish.patch(f"/courses/{uuid}", json={"name": name}, headers=API)
            assert renamed.status_code == 200, renamed.text
        await line.control.advance(to=START + timedelta(minutes=30))
        collector = LagCollector(line.control)
        await collector.collect()
        found = collector.report(START + timedelta(minutes=30)).to_json()["edges"]

    # Find follows the feed every 5 minutes: 00:05, 00:10 and 00:15 bring versions 1, 2, 3
    assert (found[FIND]["changes"], found[FIND]["delivered"]) == (3, 3)
    assert found[FIND]["lag_seconds"] | {"p95": 0, "p99": 0} == {
        "p50": 180.0,
        "p95": 0,
        "p99": 0,
        "max": 300.0,
        "mean": 220.0,
    }
    # Apply lists everything at 00:10, when version 2 is there already, then asks for what
    # changed since: version 3 of 00:12 arrives at 00:20
    assert (found[APPLY]["changes"], found[APPLY]["delivered"]) == (3, 2)
    assert found[APPLY]["superseded"] == 1
    assert (found[APPLY]["lag_seconds"]["p50"], found[APPLY]["lag_seconds"]["max"]) == (
        330.0,
        480.0,
    )
    # Find ran at 00:05 ... 00:30, Apply at 00:10 ... 00:30: six and three course runs
    assert (found[FIND]["cost"]["runs"], found[APPLY]["cost"]["runs"]) == (6, 3)
    assert found[FIND]["cost"]["empty_runs"] == 3
