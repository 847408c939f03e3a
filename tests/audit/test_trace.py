"""One record followed through the line: each copy's versions, when they came and why then."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.lag import LagCollector, Outcome
from serviceline.audit.trace import Hop, Trace, collect_trace, hop_edges
from serviceline.testing import ADMIN, API, AUDITOR, LineUnderTest, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio
START = datetime(2026, 10, 5, tzinfo=UTC)
FIND = "publish.course.find"
APPLY = "publish.course.apply"
REGISTER = "publish.course.register"


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def hop(found: Trace, edge: str) -> Hop:
    return next(h for h in found.hops if h.edge.name == edge)


def arrivals(found: Trace, edge: str) -> list[tuple[int, str, datetime | None, float | None]]:
    return [
        (a.change.version, a.outcome.value, a.arrived_at, a.lag_seconds)
        for a in hop(found, edge).arrivals
    ]


async def renamed_course(line: LineUnderTest) -> str:
    """A course made at 00:00 (version 1), renamed at 00:07 and 00:12 (versions 2 and 3)."""
    uuid = await builders.publish_course(
        line, builders.provider(), builders.course(), builders.site()
    )
    for minute, name in ((7, "Art"), (12, "Fine Art")):
        await line.control.advance(to=at(minute))
        renamed = await line["publish"].patch(f"/courses/{uuid}", json={"name": name}, headers=API)
        assert renamed.status_code == 200, renamed.text
    return uuid


def test_a_course_is_followed_on_every_copy_of_courses_in_journey_order() -> None:
    assert [e.name for e in hop_edges(LINE, "course")] == [FIND, APPLY, REGISTER]
    assert next(e.name for e in hop_edges(LINE, "school")) == "gias.school.publish"


async def test_each_copy_holds_each_version_from_the_run_its_schedule_brought(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await renamed_course(line)
        await line.control.advance(to=at(30))
        found = await collect_trace(LagCollector(line.control), "course", uuid, AUDITOR)

    assert found.at == at(30)
    assert [(c.owner, c.version, c.changed_at) for c in found.versions] == [
        ("publish", 1, at(0)),
        ("publish", 2, at(7)),
        ("publish", 3, at(12)),
    ]
    # Find follows the feed every 5 minutes: each version at the next run
    assert arrivals(found, FIND) == [
        (1, "delivered", at(5), 300.0),
        (2, "delivered", at(10), 180.0),
        (3, "delivered", at(15), 180.0),
    ]
    assert [a.words() for a in hop(found, FIND).arrivals] == [
        f"the Mon 05 Oct 00:{m} run (feed, cron */5 * * * *)" for m in ("05", "10", "15")
    ]
    # Apply's first read at 00:10 lists everything, version 2 by then: it never saw version 1
    assert arrivals(found, APPLY) == [
        (1, "superseded", None, None),
        (2, "delivered", at(10), 180.0),
        (3, "delivered", at(20), 480.0),
    ]
    apply = hop(found, APPLY)
    assert [a.words() for a in apply.arrivals] == [
        "never seen: version 2 replaced it before a run read it",
        "the Mon 05 Oct 00:10 full run (updated_since, cron */10 * * * *)",
        "the Mon 05 Oct 00:20 run (updated_since, cron */10 * * * *)",
    ]
    assert apply.never_saw == [1]
    assert [(h.since, h.version, h.op) for h in apply.held] == [
        (at(10), 2, "upsert"),
        (at(20), 3, "upsert"),
    ]
    assert apply.state.copy is not None
    assert apply.state.copy["name"] == "Fine Art"
    # Register is not running here: its hop is there, empty
    assert (hop(found, REGISTER).running, hop(found, REGISTER).arrivals) == (False, ())


async def test_a_version_waiting_for_its_run_is_pending_until_the_run_due(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await renamed_course(line)
        await line.control.advance(to=at(14))
        found = await collect_trace(LagCollector(line.control), "course", uuid, AUDITOR)
    waiting = hop(found, APPLY).arrivals[-1]
    assert (waiting.change.version, waiting.outcome) == (3, Outcome.PENDING)
    assert (
        waiting.words()
        == "waits for the run due Mon 05 Oct 00:20 (updated_since, cron */10 * * * *)"
    )
    assert hop(found, FIND).arrivals[-1].outcome is Outcome.PENDING


async def test_a_failed_run_is_retried_and_the_retry_brings_the_version(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await renamed_course(line)
        await line.control.advance(to=at(21))
        renamed = await line["publish"].patch(
            f"/courses/{uuid}", json={"name": "Fine Art and Design"}, headers=API
        )
        assert renamed.status_code == 200, renamed.text
        # Publish refuses its next four answers: Find's 00:25 runs of providers and courses,
        # and the first retry of each
        fault = {"kind": "fail", "times": 4}
        assert (await line["publish"].post("/admin/faults", json=fault, headers=ADMIN)).is_success
        await line.control.advance(to=at(30))
        found = await collect_trace(LagCollector(line.control), "course", uuid, AUDITOR)

    came = hop(found, FIND).arrivals[-1]
    assert (came.change.version, came.outcome, came.wait.failed_runs) == (4, Outcome.DELIVERED, 2)
    assert came.wait.due_at == at(25)
    # Sidekiq's back-off: 15 s and 16 s, each with the job's own jitter (1 and 2 s here)
    assert came.wait.run_at == at(25) + timedelta(seconds=34)
    assert not came.wait.on_schedule
    assert came.words() == (
        "the Mon 05 Oct 00:25:34 run (feed, cron */5 * * * *), "
        "off schedule: a retry, after 2 failed runs; "
        "delayed by fail on publish from Mon 05 Oct 00:21 on, until cleared"
    )
    assert hop(found, FIND).state.faults == ("fail on publish",)
    # Apply's 00:30 run found Publish answering again: the fault did not delay it
    assert hop(found, APPLY).arrivals[-1].wait.failed_runs == 0
    assert hop(found, APPLY).arrivals[-1].faults == ()


async def test_a_delay_is_put_down_to_a_fault_logged_once_it_is_over(state_dir: Path) -> None:
    """Publish fails from 00:13 until cleared at 00:40: Find's 00:15 run and its retries fail."""
    async with in_process_line(["publish", "find"], state_dir) as line:
        uuid = await renamed_course(line)
        await line.control.advance(to=at(13))
        publish = line["publish"]
        assert (
            await publish.post("/admin/faults", json={"kind": "fail"}, headers=ADMIN)
        ).is_success
        await line.control.advance(to=at(40))
        assert (await publish.delete("/admin/faults", headers=ADMIN)).is_success
        windows = (await publish.get("/admin/faults/windows", headers=ADMIN)).json()
        await line.control.advance(to=at(120))
        found = await collect_trace(LagCollector(line.control), "course", uuid, AUDITOR)

    assert windows == [
        {
            "kind": "fail",
            "edge": None,
            "began_at": "2026-10-05T00:13:00Z",
            "until": "2026-10-05T00:40:00Z",
        }
    ]
    assert hop(found, FIND).state.faults == ()  # none is set now
    came = hop(found, FIND).arrivals[-1]
    assert (came.change.version, came.outcome) == (3, Outcome.DELIVERED)
    assert came.arrived_at is not None
    assert came.arrived_at >= at(40)
    assert [f.words() for f in came.faults] == [
        "fail on publish from Mon 05 Oct 00:13 to Mon 05 Oct 00:40"
    ]
    assert came.words().endswith(
        "; delayed by fail on publish from Mon 05 Oct 00:13 to Mon 05 Oct 00:40"
    )
    # version 1 came at 00:05, before the fault: nothing to put down to it
    assert hop(found, FIND).arrivals[0].faults == ()
    assert found.to_json()["hops"][0]["fault_windows"] == [
        {
            "service": "publish",
            "kind": "fail",
            "edge": None,
            "from": at(13).isoformat(),
            "until": at(40).isoformat(),
        }
    ]


async def test_an_edit_to_a_copy_is_shown_and_what_the_owners_next_import_did_to_it(
    state_dir: Path,
) -> None:
    edge = "gias.school.placements"
    async with in_process_line(["gias", "publish", "dqt", "placements"], state_dir) as line:
        school = builders.school("100000", telephone="020 7000 0000")
        made = await line["gias"].post("/schools/batch", json=[school], headers=API)
        assert made.status_code == 201, made.text
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge(edge)
        edit = {"telephone": "020 7946 0001", "website": "https://aldgate.example"}
        edited = await line["placements"].patch("/copies/school/100000", json=edit, headers=API)
        assert edited.status_code == 200, edited.text
        collector = LagCollector(line.control)
        before = hop(await collect_trace(collector, "school", "100000", AUDITOR), edge)
        await line.control.advance(to=START + timedelta(hours=23, minutes=30))
        after = hop(await collect_trace(collector, "school", "100000", AUDITOR), edge)

    assert before.local_edits == ["telephone", "website"]
    assert before.edit_words() == [
        "telephone set to '020 7946 0001' here Mon 05 Oct 00:00: held; "
        "the next owner change to it overwrites it",
        "website set to 'https://aldgate.example' here Mon 05 Oct 00:00: held; "
        "the next owner change to it overwrites it",
    ]
    # the 23:30 import wrote GIAS's values over both
    assert after.local_edits == []
    assert after.edit_words() == [
        "telephone set to '020 7946 0001' here Mon 05 Oct 00:00: overwritten Mon 05 Oct 23:30 "
        "by the owner's '020 7000 0000' (owner_wins): the edit is lost",
        "website set to 'https://aldgate.example' here Mon 05 Oct 00:00: overwritten "
        "Mon 05 Oct 23:30 by the owner's None (owner_wins): the edit is lost",
    ]
    assert [e.outcome for e in after.state.edits] == ["overwritten", "overwritten"]
    assert after.state.copy is not None
    assert after.state.copy["telephone"] == "020 7000 0000"


async def test_a_later_edit_replaces_an_earlier_one_and_local_wins_keeps_the_owner_out(
    state_dir: Path,
) -> None:
    edge = "gias.school.placements"
    async with in_process_line(["gias", "publish", "dqt", "placements"], state_dir) as line:
        school = builders.school("100000", telephone="020 7000 0000")
        assert (await line["gias"].post("/schools/batch", json=[school], headers=API)).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge(edge)
        for telephone in ("020 7946 0001", "020 7946 0002"):
            edit = {"telephone": telephone}
            edited = await line["placements"].patch("/copies/school/100000", json=edit, headers=API)
            assert edited.status_code == 200, edited.text
        found = hop(
            await collect_trace(LagCollector(line.control), "school", "100000", AUDITOR), edge
        )
    assert [(e.value, e.outcome) for e in found.state.edits] == [
        ("020 7946 0001", "replaced"),
        ("020 7946 0002", "held"),
    ]
    assert found.to_json()["edit_log"][1]["value"] == "020 7946 0002"


async def test_the_trace_as_json_names_every_hop_and_version(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.advance(to=at(5))
        found = (await collect_trace(LagCollector(line.control), "course", uuid, AUDITOR)).to_json()
    assert [h["edge"] for h in found["hops"]] == [FIND, APPLY, REGISTER]
    assert found["hops"][0]["versions"] == [
        {
            "version": 1,
            "op": "upsert",
            "changed_at": at(0).isoformat(),
            "outcome": "delivered",
            "arrived_at": at(5).isoformat(),
            "lag_seconds": 300.0,
            "run_at": at(5).isoformat(),
            "due_at": at(5).isoformat(),
            "failed_runs": 0,
            "faults": [],
            "why": "the Mon 05 Oct 00:05 run (feed, cron */5 * * * *)",
        }
    ]
