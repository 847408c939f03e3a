import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.drift import (
    Auditor,
    DriftReport,
    EdgeDrift,
    exceeded,
    history_rows,
    read_history,
    record_history,
)
from serviceline.audit.findings import Comparison
from serviceline.model.topology import Edge
from serviceline.testing import (
    ADMIN,
    API,
    LineUnderTest,
    in_process_line,
)
from tests import builders

pytestmark = pytest.mark.anyio

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "drift.schema.json").read_text())
APPLY_COURSES = LINE.edge("publish.course.apply")
FIND_COURSES = LINE.edge("publish.course.find")


def auditor(line: LineUnderTest) -> Auditor:
    return line.auditor()


async def test_missing_before_the_first_sync_then_in_sync(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        before = await auditor(line).edge(APPLY_COURSES)
        assert before.counts["missing"] == 1
        assert before.counts["in_sync"] == 0
        assert [(k.key, k.drift) for k in before.keys] == [(uuid, "missing")]
        assert before.lag is not None
        assert before.lag.changes == 1
        assert before.last_sync_at is None

        await line.control.sync()
        after = await auditor(line).edge(APPLY_COURSES)
        assert after.counts == {**dict.fromkeys(after.counts, 0), "in_sync": 1}
        assert after.lag is not None
        assert after.lag.changes == 0
        assert after.last_sync_at is not None


async def test_a_provider_whose_version_moved_with_no_copied_field_changed_is_in_sync(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.sync()
        renamed = await line["publish"].patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
        assert renamed.status_code == 200, renamed.text
        for name in ("publish.provider.find", "publish.provider.apply"):
            # the course's rename moves its provider's version; no provider field Find or Apply
            # copies changed, so the copy holds the provider as it is: no drift
            provider = await auditor(line).edge(LINE.edge(name))
            assert provider.counts["in_sync"] == 1, name
            assert provider.keys == []
            assert provider.lag is not None
            assert (provider.lag.changes, provider.lag.unchanged_versions) == (0, 1)


async def test_the_last_run_and_the_last_change_applied_are_told_apart(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        await line.control.advance(by="5m")
        await line.control.advance(by="1h")  # twelve quiet polls
        courses = await auditor(line).edge(FIND_COURSES)
        assert courses.last_change_at is not None
        assert courses.last_run_at is not None
        assert (courses.last_run_at - courses.last_change_at).total_seconds() == 3600


async def test_a_change_is_stale_with_both_values_until_the_sync(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.sync()
        renamed = {"name": "Art, Craft and Design"}
        patched = await line["publish"].patch(f"/courses/{uuid}", json=renamed, headers=API)
        assert patched.status_code == 200, patched.text
        await line.control.advance(by="2m")

        for edge in (APPLY_COURSES, FIND_COURSES):
            stale = await auditor(line).edge(edge)
            assert stale.counts["stale"] == 1, edge.name
            [key] = stale.keys
            assert [(d.field, d.values) for d in key.differences] == [
                ("name", {"publish": "Art, Craft and Design", edge.consumer: "Art and Design"})
            ]
            assert stale.lag is not None
            assert stale.lag.changes == 1
            assert stale.lag.oldest_age_seconds == 120

        await line.control.sync()
        healed = await auditor(line).edge(APPLY_COURSES)
        assert healed.counts["stale"] == 0
        assert healed.counts["in_sync"] == 1


async def test_a_hard_delete_orphans_apply_copy_but_not_find_copy(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        await line.control.sync()
        await line.control.advance(by="1h")
        deleted = await line["publish"].delete(f"/courses/{uuid}", headers=API)
        assert deleted.status_code == 204, deleted.text
        await line.control.sync()

        # Apply reads with updated_since, which never sees a deleted course
        orphaned = await auditor(line).edge(APPLY_COURSES)
        assert [(k.key, k.drift) for k in orphaned.keys] == [(uuid, "orphaned")]
        # Find follows the change feed, deletes included
        followed = await auditor(line).edge(FIND_COURSES)
        assert sum(followed.counts.values()) == 0


async def test_partnerships_held_differently_conflict(state_dir: Path) -> None:
    async with in_process_line(["publish", "manage", "apply"], state_dir) as line:
        await builders.publish_provider(line, builders.provider())
        await builders.publish_provider(line, builders.provider("1TZ", accredited_body=False))
        pair = {"accredited_provider_code": "2FR", "training_provider_code": "1TZ"}
        made = await line["publish"].post("/partnerships", json=pair, headers=API)
        assert made.status_code == 201, made.text
        other = {"accredited_provider_code": "2FR", "lead_partner_code": "5J5"}
        made = await line["manage"].post("/partnerships", json=other, headers=API)
        assert made.status_code == 201, made.text

        [partnerships] = [c for c in await auditor(line).comparisons() if c.entity == "partnership"]
        assert partnerships.counts["conflicting"] == 2
        held = {k.key: k.differences[0].values for k in partnerships.keys}
        assert held == {
            "2FR:1TZ": {"publish": True, "manage": False},
            "2FR:5J5": {"publish": False, "manage": True},
        }


async def test_a_mentor_held_by_placements_alone_conflicts(state_dir: Path) -> None:
    async with in_process_line(
        ["gias", "dqt", "publish", "placements", "claims"], state_dir
    ) as line:
        await line["gias"].post("/schools", json=builders.school(), headers=API)
        people = [builders.dqt_person()]
        assert (await line["dqt"].post("/v3/teachers/batch", json=people, headers=API)).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        for consumer in ("placements", "claims"):
            await line.control.run_edge(f"gias.school.{consumer}")
        added = await line["placements"].post("/mentors", json=builders.mentor(), headers=API)
        assert added.status_code == 201, added.text

        [mentors] = [c for c in await auditor(line).comparisons() if c.entity == "mentor"]
        assert [(k.key, k.drift) for k in mentors.keys] == [("1234567", "conflicting")]
        assert mentors.keys[0].differences[0].values == {"placements": True, "claims": False}

        added = await line["claims"].post("/mentors", json=builders.mentor(), headers=API)
        assert added.status_code == 201, added.text
        [mentors] = [c for c in await auditor(line).comparisons() if c.entity == "mentor"]
        assert mentors.counts["in_sync"] == 1
        assert mentors.keys == []


async def report_of(line: LineUnderTest) -> DriftReport:
    return await auditor(line).audit(
        [APPLY_COURSES, FIND_COURSES, LINE.edge("hesa.itt_record.register")]
    )


async def test_the_json_report_follows_its_schema(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        report = await report_of(line)
        body: dict[str, Any] = report.to_json()
        jsonschema.validate(body, SCHEMA)
        assert body["skipped"] == [
            {"edge": "hesa.itt_record.register", "reason": "hesa is not running"}
        ]
        assert [e["counts"]["missing"] for e in body["edges"]] == [1, 1]


async def test_fail_on_limits_and_history(state_dir: Path) -> None:
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        report = await report_of(line)
        assert exceeded(report, {"missing": 2, "stale": 0}) == []
        assert exceeded(report, {"missing": 1}) == ["missing: 2 over the limit of 1"]
        record_history(report, state_dir)
        await line.control.sync()
        record_history(await report_of(line), state_dir)
        samples = read_history(state_dir)
        figures = [s["edges"]["publish.course.apply"]["counts"]["missing"] for s in samples]
        assert figures == [1, 0]

        await line.control.advance(by="1h")
        record_history(await report_of(line), state_dir)
        record_history(await report_of(line), state_dir)  # twice at one moment: one row
        rows = history_rows(read_history(state_dir), ["publish.course.apply"])
        assert [row["at"] for row in rows] == [samples[0]["at"], "2026-10-05T01:00:00+00:00"]
        assert {row["edge"] for row in rows} == {"publish.course.apply"}
        # of the two samples taken at the first moment, the later one: after the sync
        assert rows[0]["counts"]["missing"] == 0
        assert (rows[1]["lag_changes"], rows[1]["lost_local_edits"]) == (0, 0)
        assert "lag_oldest_age_seconds" in rows[1]


async def test_a_bisect_audit_classifies_as_the_full_audit_does(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        await builders.publish_provider(line, builders.provider(), builders.site())
        uuids = []
        for code in ("3GTY", "3GTZ", "3GT1"):
            made = await line["publish"].post(
                "/providers/2FR/courses", json=builders.course(code), headers=API
            )
            assert made.status_code == 201, made.text
            uuids.append(made.json()["uuid"])
        await line.control.sync()
        renamed = {"name": "Art, Craft and Design"}
        patched = await line["publish"].patch(f"/courses/{uuids[0]}", json=renamed, headers=API)
        assert patched.status_code == 200, patched.text
        deleted = await line["publish"].delete(f"/courses/{uuids[1]}", headers=API)
        assert deleted.status_code == 204, deleted.text
        new = await line["publish"].post(
            "/providers/2FR/courses", json=builders.course("3GT2"), headers=API
        )
        assert new.status_code == 201, new.text

        full = await auditor(line).edge(FIND_COURSES)
        bisected = await line.auditor(bisect=True).edge(FIND_COURSES)
        assert (full.method, bisected.method, bisected.fallback) == ("full", "bisect", None)
        assert bisected.counts == full.counts
        assert full.counts == {
            **dict.fromkeys(full.counts, 0),
            "in_sync": 1,
            "stale": 1,
            "orphaned": 1,
            "missing": 1,
        }
        assert bisected.keys == full.keys
        assert {k.drift: k.key for k in bisected.keys} == {
            "stale": uuids[0],
            "orphaned": uuids[1],
            "missing": new.json()["uuid"],
        }
        assert bisected.lag == full.lag


async def test_a_bisect_audit_lists_an_edge_its_owner_cannot_checksum(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        report = await line.auditor(bisect=True).audit([APPLY_COURSES])
        [edge] = report.edges
        assert edge.method == "full"
        assert edge.fallback is not None
        assert "no checksums" in edge.fallback
        assert edge.counts["missing"] == 1
        jsonschema.validate(report.to_json(), SCHEMA)


async def school_copied(line: LineUnderTest, edge: Edge) -> None:
    """School 100000 in GIAS's daily file, and copied along `edge`."""
    school = builders.school("100000", telephone="020 7000 0000")
    assert (await line["gias"].post("/schools/batch", json=[school], headers=API)).is_success
    await line.control.run_job("gias", "gias.daily_extract")
    await line.control.run_edge(edge)


async def test_a_local_edit_is_diverged_until_the_nightly_import_loses_it(
    state_dir: Path,
) -> None:
    edge = LINE.edge("gias.school.placements")
    async with in_process_line(["gias", "publish", "dqt", "placements"], state_dir) as line:
        await school_copied(line, edge)
        edit = {"telephone": "020 7946 0001"}
        patched = await line["placements"].patch("/copies/school/100000", json=edit, headers=API)
        assert patched.status_code == 200, patched.text

        edited = await auditor(line).edge(edge)
        assert [(k.key, k.drift) for k in edited.keys] == [("100000", "diverged")]
        (difference,) = edited.keys[0].differences
        assert difference.field == "telephone"
        assert set(difference.values.values()) == {"020 7000 0000", "020 7946 0001"}

        await line.control.advance(by="23h30m")  # the nightly GIAS import, owner_wins
        healed = await auditor(line).edge(edge)
        assert healed.counts["in_sync"] == 1
        assert healed.counts["diverged"] == 0
        assert healed.lost_local_edits == 1


async def test_a_remembered_audit_answers_as_a_fresh_one_and_reads_only_after_a_write(
    state_dir: Path,
) -> None:
    edge = LINE.edge("gias.school.placements")
    async with in_process_line(["gias", "publish", "dqt", "placements"], state_dir) as line:
        await school_copied(line, edge)
        remembering = line.auditor(remember=True)
        read: list[str] = []

        async def note(request: httpx.Request) -> None:
            read.append(request.url.path)

        line["gias"].event_hooks = {"request": [note], "response": []}

        async def audited() -> tuple[EdgeDrift, bool]:
            """The remembering audit, checked against a fresh one; whether it read the owner."""
            read.clear()
            found = await remembering.edge(edge)
            owner_read = any(not path.startswith("/admin/") for path in read)
            assert found == await auditor(line).edge(edge)
            return found, owner_read

        first, owner_read = await audited()
        assert owner_read
        assert (await audited()) == (first, False), "nothing was written: the audit is kept"

        moved = {"telephone": "020 7946 0001"}
        patched = await line["gias"].patch("/schools/100000", json=moved, headers=API)
        assert patched.status_code == 200, patched.text
        await line.control.run_job("gias", "gias.daily_extract")
        stale, owner_read = await audited()
        assert owner_read
        assert stale.counts["stale"] == 1
        await line.control.advance(by="1h")
        older, owner_read = await audited()
        assert not owner_read
        assert older.lag is not None
        assert stale.lag is not None
        assert stale.lag.oldest_age_seconds is not None
        assert older.lag.oldest_age_seconds == stale.lag.oldest_age_seconds + 3600

        edit = {"telephone": "020 7946 0002"}
        edited = await line["placements"].patch("/copies/school/100000", json=edit, headers=API)
        assert edited.status_code == 200, edited.text
        diverged, owner_read = await audited()
        assert owner_read
        assert [k.drift for k in diverged.keys] == ["diverged"]

        fault = {"kind": "slow", "seconds": 0}
        assert (await line["gias"].post("/admin/faults", json=fault, headers=ADMIN)).is_success
        assert (await audited())[1], "a fault may change answers: nothing is kept"


async def test_a_remembering_audit_asks_dqt_again_only_of_teachers_its_log_moved(
    state_dir: Path,
) -> None:
    edge = LINE.edge("dqt.teacher.placements")
    async with in_process_line(["gias", "publish", "dqt", "placements"], state_dir) as line:
        await line["gias"].post("/schools", json=builders.school(), headers=API)
        people = [builders.dqt_person(), builders.dqt_person("7654321", last_name="Hughes")]
        assert (await line["dqt"].post("/v3/teachers/batch", json=people, headers=API)).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge("gias.school.placements")
        for trn in ("1234567", "7654321"):
            added = await line["placements"].post(
                "/mentors", json=builders.mentor(trn), headers=API
            )
            assert added.status_code == 201, added.text
        await line.control.run_edge(edge)
        remembering = line.auditor(remember=True)
        asked: list[str] = []

        async def note(request: httpx.Request) -> None:
            if request.url.path.startswith("/v3/teachers/"):
                asked.append(request.url.path.rsplit("/", 1)[-1])

        line["dqt"].event_hooks = {"request": [note], "response": []}

        async def audited() -> tuple[EdgeDrift, list[str]]:
            """The remembering audit, checked against a fresh one; the TRNs it asked DQT of."""
            asked.clear()
            found = await remembering.edge(edge)
            its_own = sorted(asked)
            assert found == await auditor(line).edge(edge)
            return found, its_own

        first, trns = await audited()
        assert first.counts["in_sync"] == 2
        assert trns == ["1234567", "7654321"]

        change = {"trn": "1234567", "firstName": "Margaret", "lastName": "Evans"}
        changed = await line["dqt"].post("/v3/teachers/name-changes", json=change, headers=API)
        assert changed.status_code == 204, changed.text
        stale, trns = await audited()
        assert [(k.key, k.drift) for k in stale.keys] == [("1234567", "stale")]
        assert trns == ["1234567"], "the other teacher's answer holds: the log left it alone"

        await line.control.run_edge(edge)
        healed, trns = await audited()
        assert healed.counts["in_sync"] == 2
        assert trns == [], "the copy moved, the owner did not: every answer holds"

        fault = {"kind": "slow", "seconds": 0}
        assert (await line["dqt"].post("/admin/faults", json=fault, headers=ADMIN)).is_success
        assert (await audited())[1] == ["1234567", "7654321"], "a fault may change answers"


async def test_gias_daily_file_and_register_copies_of_it_have_equal_checksums(
    state_dir: Path,
) -> None:
    edge = LINE.edge("gias.school.register")
    async with in_process_line(["gias", "register"], state_dir) as line:
        schools = [builders.school("100000"), builders.school("100001", close_date="2026-08-31")]
        assert (await line["gias"].post("/schools/batch", json=schools, headers=API)).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.advance(by="1d")
        await line.control.run_edge(edge)
        whole = {"buckets": 1}
        owned = await line["gias"].get(f"/checksums/records/{edge.name}", params=whole)
        held = await line["register"].get(f"/checksums/copies/{edge.name}", params=whole)
        assert owned.status_code == held.status_code == 200, (owned.text, held.text)
        assert owned.json()["buckets"] == held.json()["buckets"]
        assert owned.json()["buckets"][0]["count"] == 2

        bisected = await line.auditor(bisect=True).edge(edge)
        assert (bisected.method, bisected.counts["in_sync"]) == ("bisect", 2)


async def test_a_site_added_from_a_gias_school_keeps_its_address_as_its_own(
    state_dir: Path,
) -> None:
    async with in_process_line(["gias", "publish"], state_dir) as line:
        gias, publish = line["gias"], line["publish"]
        school = builders.school("100000", street="1 Aldgate High Street")
        assert (await gias.post("/schools/batch", json=[school], headers=API)).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge("gias.school.publish")
        unaddressed = builders.site(street_address_1=None, city=None, postcode=None)
        await builders.publish_provider(line, builders.provider(), unaddressed)
        (site,) = (await publish.get("/records/site")).json()["records"]
        assert (site["street_address_1"], site["city"]) == ("1 Aldgate High Street", "London")
        sites = "site added from a GIAS school"

        def compared(comparisons: list[Comparison]) -> Comparison:
            return next(c for c in comparisons if c.name == sites)

        assert compared(await auditor(line).comparisons()).counts["in_sync"] == 1

        moved = {"street_address_1": "St James's Passage"}
        edited = await publish.patch(f"/sites/{site['uuid']}", json=moved, headers=API)
        assert edited.status_code == 200, edited.text
        diverged = compared(await auditor(line).comparisons())
        assert diverged.counts["diverged"] == 1
        (difference,) = diverged.keys[0].differences
        assert difference.values == {
            "publish": "St James's Passage",
            "gias": "1 Aldgate High Street",
        }

        # GIAS moves the school too: Publish's copy of the school follows, the site never does
        assert (
            await gias.patch("/schools/100000", json={"street": "2 Mitre Street"}, headers=API)
        ).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge("gias.school.publish")
        assert (await line.copy_of("publish", "school", "100000"))["address1"] == "2 Mitre Street"
        still = compared(await auditor(line).comparisons())
        assert still.keys[0].differences[0].values["gias"] == "2 Mitre Street"
        assert still.keys[0].differences[0].values["publish"] == "St James's Passage"


async def test_an_edge_whose_owner_failed_shows_its_retry_until_it_works(state_dir: Path) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        publish = line["publish"]
        assert (
            await publish.post("/admin/faults", json={"kind": "fail"}, headers=ADMIN)
        ).is_success
        await line.control.advance(by="10m")
        assert (await publish.delete("/admin/faults", headers=ADMIN)).status_code == 204

        report = await auditor(line).audit([APPLY_COURSES])
        jsonschema.validate(report.to_json(), SCHEMA)
        [edge] = report.edges
        assert edge.retry is not None
        # Apply's sync worker retries 3 times; Sidekiq's first retry waits 15 s and a jitter
        # (7 s, from the job's name)
        assert (edge.retry.job, edge.retry.failures, edge.retry.retries_left) == (
            APPLY_COURSES.name,
            1,
            3,
        )
        assert edge.retry.due_at.isoformat() == "2026-10-05T00:10:22+00:00"
        assert edge.counts["missing"] == 1

        await line.control.advance(by="1m")
        healed = await auditor(line).edge(APPLY_COURSES)
        assert healed.retry is None
        assert healed.counts["in_sync"] == 1


async def test_a_bisect_audit_says_why_each_edge_it_listed_in_full_was_listed_so(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find", "apply", "placements"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())
        await line.control.sync()
        report = await line.auditor(bisect=True).audit()
        listed = {e.edge: e.fallback for e in report.edges if e.method == "full"}
        assert listed, "every edge was bisected: the test would prove nothing"
        assert all(listed.values()), listed
        subjects = listed["publish.subject.placements"]
        assert subjects is not None
        assert "does not own" not in subjects
        assert "publish serves its subject records from a fixed list" in subjects, subjects


@pytest.mark.parametrize("bisect", [False, True])
async def test_sites_no_synced_course_lists_are_not_missing_from_apply(
    state_dir: Path, bisect: bool
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        unused, drafted = builders.site("B", urn="100001"), builders.site("C", urn="100002")
        await builders.publish_course(
            line,
            builders.provider(),
            builders.course(site_codes=["A"]),
            builders.site(),
            unused,
            drafted,
        )
        draft = builders.course("D100", state="draft", site_codes=["C"])
        made = await line["publish"].post("/providers/2FR/courses", json=draft, headers=API)
        assert made.status_code == 201, made.text
        await line.control.advance(by="10m")
        report = await line.auditor(bisect=bisect).edge(LINE.edge("publish.site.apply"))
        # Apply reads the sites of its synced courses only: B (no course) and C (a draft's)
        # are not Apply's to copy
        assert {name: count for name, count in report.counts.items() if count} == {"in_sync": 1}
