"""Register: trainees from Apply's recruits and record systems, TRNs and route statuses from DQT."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError

from lines.becoming_a_teacher.topology import LINE, record_system_for
from serviceline.stack.control import LineControl
from serviceline.testing import (
    ADMIN_TOKEN,
    API,
    AUDITOR,
    LineUnderTest,
    headers_of,
    in_process_line,
    names_field,
    reference,
    refusal,
)
from tests import builders

pytestmark = pytest.mark.anyio

# every service Register reads or commands: a line without one would reach for a real port
NAMES = ["gias", "publish", "apply", "register", "dqt", "hesa"]
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday: the clock's start
VENDOR = headers_of("manage", "apply")
SITS = headers_of("sits", "register")
TRAINEES = "/api/v2026.1/trainees"


class _SpecLoader(yaml.SafeLoader):
    """The spec's examples hold "dates" such as 2023-13-01: read every scalar date as text."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` lets null in."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


@functools.cache
def _operations() -> dict[str, Any]:
    spec = yaml.load(
        reference("specs", "register-api-v2026.1.yaml").read_text(), Loader=_SpecLoader
    )
    paths: dict[str, Any] = spec["paths"]
    return paths


def conforms(body: Any, method: str, path: str, code: int) -> None:
    """Validate a body against the schema the spec gives one response of one endpoint."""
    operation = _operations()[f"/api/{{api_version}}{path}"][method]
    content = operation["responses"][str(code)]["content"]["application/json"]
    Draft202012Validator(_json_schema(content["schema"])).validate(body)


def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def refused(response: httpx.Response, code: int, *words: str) -> Any:
    assert response.status_code == code, response.text
    for word in words:
        assert word in response.text, response.text
    return response.json()


def dqt_route(state_dir: Path, slug: str) -> tuple[str, str | None] | None:
    """The route DQT holds under a trainee's slug: DQT's API sets routes but never lists them."""
    with contextlib.closing(sqlite3.connect(state_dir / "dqt.db")) as db:
        row = db.execute(
            "SELECT status, holds_from FROM dqt_route WHERE reference = ?", (slug,)
        ).fetchone()
    return None if row is None else (row[0], row[1])


def runs(ran: list[dict[str, Any]], job: str) -> list[dict[str, Any]]:
    return [run for run in ran if run["job"] == job]


async def draft(line: LineUnderTest, **overrides: Any) -> dict[str, Any]:
    body = builders.register_draft(**overrides)
    trainee: dict[str, Any] = ok(
        await line["register"].post("/trainees", json=body, headers=API), 201
    )
    return trainee


async def submitted(line: LineUnderTest, **overrides: Any) -> dict[str, Any]:
    trainee = await draft(line, **overrides)
    path = f"/trainees/{trainee['slug']}/submit-for-trn"
    answer: dict[str, Any] = ok(await line["register"].post(path, headers=API))
    return answer


async def trainee(line: LineUnderTest, slug: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(await line["register"].get(f"/trainees/{slug}", headers=API))
    return found


async def post(line: LineUnderTest, slug: str, action: str, **body: Any) -> httpx.Response:
    return await line["register"].post(f"/trainees/{slug}/{action}", json=body, headers=API)


async def publish_courses(line: LineUnderTest) -> dict[str, str]:
    """2FR's school-led course 3GTY (chemistry) and its university course U100, copied to Apply."""
    await builders.publish_provider(line, builders.provider(), builders.site())
    uuids = {}
    for course in (
        builders.course(program_type="scitt_programme", subject_codes=["F1"], name="Chemistry"),
        builders.course("U100"),
    ):
        created = ok(
            await line["publish"].post("/providers/2FR/courses", json=course, headers=API), 201
        )
        uuids[course["code"]] = created["uuid"]
    for entity in ("provider", "site", "course"):
        await line.control.run_edge(f"publish.{entity}.apply")
    return uuids


async def recruit(line: LineUnderTest, course_uuid: str, email: str) -> str:
    """A candidate applies, is offered a place without conditions and accepts: recruited."""
    apply = line["apply"]
    candidate = ok(
        await apply.post("/candidates", json=builders.candidate(email), headers=API), 201
    )
    body = builders.application(candidate["id"], course_uuid)
    id: str = ok(await apply.post("/applications", json=body, headers=API), 201)["id"]
    offer = {"data": {"conditions": []}, "meta": builders.vendor_meta()}
    ok(await apply.post(f"/api/v1/applications/{id}/offer", json=offer, headers=VENDOR))
    assert ok(await apply.post(f"/applications/{id}/accept-offer", headers=API))["status"] == (
        "recruited"
    )
    return id


async def application_copy(line: LineUnderTest, id: str) -> dict[str, Any] | None:
    response = await line["register"].get(f"/copies/application/{id}", headers=AUDITOR)
    return response.json() if response.status_code == 200 else None


async def test_recruits_are_imported_at_one_and_become_draft_trainees_at_four(
    state_dir: Path,
) -> None:
    async with in_process_line(NAMES, state_dir) as line:
        courses = await publish_courses(line)
        school_led = await recruit(line, courses["3GTY"], "amira.khan@example.com")
        university = await recruit(line, courses["U100"], "ben.jones@example.com")

        await line.control.advance(to=START + timedelta(minutes=59))
        assert await application_copy(line, school_led) is None
        await line.control.advance(to=START + timedelta(hours=1))
        copy = await application_copy(line, school_led)
        assert copy is not None
        assert (copy["status"], copy["import_state"], copy["email"]) == (
            "recruited",
            "importable",
            "amira.khan@example.com",
        )

        # a change Apply makes after the import reaches the trainee only as the copy had it
        candidate = ok(await line["apply"].get(f"/applications/{school_led}", headers=API))
        ok(
            await line["apply"].patch(
                f"/candidates/{candidate['candidate_id']}",
                json={"email": "amira@example.org"},
                headers=API,
            )
        )
        ran = await line.control.advance(to=START + timedelta(hours=3, minutes=59))
        assert runs(ran, "register.create_trainees_from_apply") == []
        assert ok(await line["register"].get("/trainees", headers=API)) == []

        ran = await line.control.advance(to=START + timedelta(hours=4))
        (created,) = runs(ran, "register.create_trainees_from_apply")
        assert created["result"] == {"created": 1, "non_importable_hei": 1, "waiting_for_course": 0}
        (made,) = ok(await line["register"].get("/trainees", headers=API))
        assert {
            name: made[name]
            for name in (
                "state",
                "record_source",
                "apply_id",
                "first_names",
                "last_name",
                "date_of_birth",
                "email",
                "provider_code",
                "course_uuid",
                "training_route",
                "study_mode",
                "course_subject_one",
                "course_min_age",
                "course_max_age",
                "itt_start_date",
                "itt_end_date",
            )
        } == {
            "state": "draft",
            "record_source": "apply",
            "apply_id": school_led,
            "first_names": "Boris",
            "last_name": "Brown",
            "date_of_birth": "1985-02-13",
            "email": "amira.khan@example.com",
            "provider_code": "2FR",
            "course_uuid": courses["3GTY"],
            "training_route": "provider_led_postgrad",
            "study_mode": "full_time",
            "course_subject_one": "chemistry",
            "course_min_age": 11,
            "course_max_age": 16,
            "itt_start_date": "2027-09-01",
            "itt_end_date": "2028-07-31",
        }
        assert (await application_copy(line, school_led) or {})["import_state"] == "imported"
        hei = await application_copy(line, university)
        assert hei is not None
        assert hei["import_state"] == "non_importable_hei"

        # the next day's import brings the withdrawal to the copy, but not to the trainee
        ok(await line["apply"].post(f"/applications/{school_led}/withdraw", headers=API))
        await line.control.advance(to=START + timedelta(days=1, hours=4))
        copy = await application_copy(line, school_led)
        assert copy is not None
        assert (copy["status"], copy["import_state"]) == ("withdrawn", "imported")
        assert [t["state"] for t in ok(await line["register"].get("/trainees", headers=API))] == [
            "draft"
        ]


async def test_a_trn_is_polled_for_a_minute_after_the_request_then_hourly(
    state_dir: Path,
) -> None:
    async with in_process_line(NAMES, state_dir) as line:
        submitting = await submitted(line, ni_number="QQ 12 34 56 C")
        slug = submitting["slug"]
        assert (submitting["state"], submitting["submitted_for_trn_at"]) == (
            "submitted_for_trn",
            "2026-10-05T00:00:00Z",
        )
        (request,) = ok(
            await line["register"].get("/trn-requests", params={"slug": slug}, headers=API)
        )
        assert (request["status"], request["next_poll_at"], request["give_up_at"]) == (
            "Pending",
            "2026-10-05T00:01:00Z",
            "2026-10-09T00:00:00Z",
        )
        asked = ok(
            await line["dqt"].get(
                "/v3/trn-requests", params={"requestId": request["request_id"]}, headers=API
            )
        )
        assert (asked["status"], asked["trn"]) == ("Pending", None)

        ran = await line.control.advance(to=START + timedelta(hours=2, minutes=1))
        polls = runs(ran, "register.retrieve_trns")
        assert [poll["due_at"] for poll in polls] == [
            "2026-10-05T00:01:00+00:00",
            "2026-10-05T01:01:00+00:00",
            "2026-10-05T02:01:00+00:00",
        ]
        assert [poll["result"]["received"] for poll in polls] == [0, 0, 1]
        (completed,) = runs(ran, "dqt.complete_trn_requests")
        assert completed["due_at"] == "2026-10-05T02:00:00+00:00"

        received = await trainee(line, slug)
        trn = received["trn"]
        assert received["state"] == "trn_received"
        person = ok(await line["dqt"].get(f"/v3/persons/{trn}", headers=AUDITOR))
        assert (person["nationalInsuranceNumber"], person["lastName"]) == ("QQ123456C", "Patel")
        copied = await line.copy_of("register", "teacher", trn)
        assert (copied["first_name"], copied["last_name"], copied["date_of_birth"]) == (
            "Priya",
            "Patel",
            "1994-03-21",
        )
        assert dqt_route(state_dir, slug) == ("InTraining", None)
        (request,) = ok(await line["register"].get("/trn-requests", headers=API))
        assert (request["status"], request["trn"], request["polls"]) == ("Completed", trn, 3)
        assert runs(await line.control.advance(by="1d"), "register.retrieve_trns") == []


async def test_register_gives_up_on_a_trn_after_four_days(state_dir: Path) -> None:
    async with in_process_line(NAMES, state_dir, trn_delay=timedelta(days=5)) as line:
        slug = (await submitted(line))["slug"]
        # only Register and DQT take part: the others' clocks may stay behind
        both = LineControl({name: line[name] for name in ("register", "dqt")}, ADMIN_TOKEN, LINE)
        polls = runs(await both.advance(by="4d"), "register.retrieve_trns")
        assert len(polls) == 96
        assert (polls[0]["due_at"], polls[-1]["due_at"]) == (
            "2026-10-05T00:01:00+00:00",
            "2026-10-08T23:01:00+00:00",
        )
        assert polls[-1]["result"]["timed_out"] == 1
        (request,) = ok(await line["register"].get("/trn-requests", headers=API))
        assert (request["status"], request["next_poll_at"], request["polls"]) == (
            "TimedOut",
            None,
            96,
        )

        # DQT gives the TRN a day later; Register no longer asks, so never hears of it
        ran = await both.advance(by="1d")
        assert runs(ran, "register.retrieve_trns") == []
        asked = ok(
            await line["dqt"].get(
                "/v3/trn-requests", params={"requestId": request["request_id"]}, headers=API
            )
        )
        assert asked["status"] == "Completed"
        waiting = await trainee(line, slug)
        assert (waiting["state"], waiting["trn"]) == ("submitted_for_trn", None)


async def test_status_changes_reach_dqt_as_route_statuses(state_dir: Path) -> None:
    async with in_process_line(NAMES, state_dir) as line:
        deferring = (await submitted(line))["slug"]
        withdrawing = (await submitted(line, email="tom.reed@example.com"))["slug"]
        assessed = (await submitted(line, training_route="assessment_only"))["slug"]
        early = (await submitted(line, last_name="Early"))["slug"]
        deferred_early = ok(await post(line, early, "defer", defer_reason="Illness"))
        assert deferred_early["state"] == "deferred"
        assert dqt_route(state_dir, early) is None  # no TRN yet: nothing to send

        await line.control.advance(by="2h1m")
        assert dqt_route(state_dir, deferring) == ("InTraining", None)
        assert dqt_route(state_dir, assessed) == ("UnderAssessment", None)
        # a trainee deferred while waiting keeps that state when its TRN arrives
        waited = await trainee(line, early)
        assert (waited["state"], waited["trn"] is not None) == ("deferred", True)
        assert dqt_route(state_dir, early) == ("Deferred", None)

        deferred = ok(await post(line, deferring, "defer", defer_date="2026-10-05"))
        assert (deferred["state"], deferred["defer_date"]) == ("deferred", "2026-10-05")
        assert dqt_route(state_dir, deferring) == ("Deferred", None)
        reinstated = ok(await post(line, deferring, "reinstate"))
        assert (reinstated["state"], reinstated["reinstate_date"]) == (
            "trn_received",
            "2026-10-05",
        )
        assert dqt_route(state_dir, deferring) == ("InTraining", None)

        withdrawn = ok(await post(line, withdrawing, "withdraw", reasons=["personal_reasons"]))
        assert (withdrawn["state"], withdrawn["withdrawal_reasons"]) == (
            "withdrawn",
            ["personal_reasons"],
        )
        assert dqt_route(state_dir, withdrawing) == ("Withdrawn", None)

        awarded = ok(
            await post(line, deferring, "recommend-for-award", qts_standards_met_date="2026-10-01")
        )
        assert (awarded["state"], awarded["outcome_date"]) == ("awarded", "2026-10-01")
        assert awarded["recommended_for_award_at"] == awarded["awarded_at"]
        assert dqt_route(state_dir, deferring) == ("Holds", "2026-10-01")
        person = ok(await line["dqt"].get(f"/v3/persons/{awarded['trn']}", headers=AUDITOR))
        assert person["qts"] == {"awarded": "2026-10-01"}
        refused(await post(line, deferring, "withdraw"), 422, "'awarded'")


async def test_the_state_machine_refuses_moves_naming_the_state(state_dir: Path) -> None:
    async with in_process_line(["register", "dqt"], state_dir) as line:
        slug = (await draft(line))["slug"]
        for action in ("defer", "withdraw", "recommend-for-award", "reinstate"):
            refused(await post(line, slug, action), 422, "state", "'draft'")
        no_end = (await draft(line, itt_end_date=None))["slug"]
        refused(await post(line, no_end, "submit-for-trn"), 422, "itt_end_date")
        assert (await trainee(line, no_end))["state"] == "draft"

        ok(await post(line, slug, "submit-for-trn"))
        for action in ("submit-for-trn", "recommend-for-award", "reinstate"):
            refused(await post(line, slug, action), 422, "'submitted_for_trn'")
        refused(await post(line, "nobody", "defer"), 404, "slug")
        after = await trainee(line, slug)
        assert (after["state"], after["defer_date"]) == ("submitted_for_trn", None)
        bad = builders.register_draft(training_route="teach_first")
        refused(
            await line["register"].post("/trainees", json=bad, headers=API), 422, "training_route"
        )

        batch = [builders.register_draft(last_name=name) for name in ("Hill", "Dale")]
        made = ok(await line["register"].post("/trainees/batch", json=batch, headers=API), 201)
        assert [(t["last_name"], t["record_source"]) for t in made] == [
            ("Hill", "manual"),
            ("Dale", "manual"),
        ]
        drafts = ok(await line["register"].get("/trainees", params={"state": "draft"}, headers=API))
        assert len(drafts) == 3


SUBMIT_ALL = "/trainees/submit-for-trn/batch"
SURNAMES = ("Hill", "Dale", "Moss")


def by_name(rows: list[dict[str, Any]], leave_out: set[str]) -> dict[str, dict[str, Any]]:
    """Each trainee, or what DQT holds of them, by last name: without what differs per line."""
    named = {row.get("last_name") or row["lastName"]: row for row in rows}
    return {
        name: {k: v for k, v in row.items() if k not in leave_out} for name, row in named.items()
    }


async def test_a_batch_submission_is_kept_as_that_many_single_submissions(
    state_dir: Path,
) -> None:
    for name in ("single", "batch"):
        (state_dir / name).mkdir()
    async with (
        in_process_line(["register", "dqt"], state_dir / "single") as single,
        in_process_line(["register", "dqt"], state_dir / "batch") as batch,
    ):
        answers = [(await submitted(single, last_name=name)) for name in SURNAMES]
        slugs = [(await draft(batch, last_name=name))["slug"] for name in SURNAMES]
        batch.calls.clear()
        submitted_all = ok(await batch["register"].post(SUBMIT_ALL, json=slugs, headers=API))
        assert [trainee["slug"] for trainee in submitted_all] == slugs
        assert [(call.method, call.path) for call in batch.calls] == [
            ("POST", "/v3/trn-requests/batch")
        ]
        keys = {"slug", "trn", "request_id", "stamp"}
        assert by_name(submitted_all, keys) == by_name(answers, keys)

        async def kept(line: LineUnderTest) -> dict[str, Any]:
            trainees = ok(await line["register"].get("/trainees", headers=API))
            requests = ok(await line["register"].get("/trn-requests", headers=API))
            names = {t["slug"]: t["last_name"] for t in trainees}
            asked = [{**r, "last_name": names[r["slug"]]} for r in requests]
            return {"trainees": by_name(trainees, keys), "requests": by_name(asked, keys)}

        assert await kept(batch) == await kept(single)
        for line in (single, batch):
            await line.control.advance(by="2h1m")
        received = await kept(batch)
        assert received == await kept(single)
        assert {t["state"] for t in received["trainees"].values()} == {"trn_received"}
        # the same people, each with a TRN of DQT's own
        people = [
            ok(await line["dqt"].get("/records/teacher", headers=AUDITOR))["records"]
            for line in (single, batch)
        ]
        assert by_name(people[1], {"trn", "source_trn_request_id"}) == by_name(
            people[0], {"trn", "source_trn_request_id"}
        )


async def test_a_batch_submission_is_refused_whole_naming_the_trainee(state_dir: Path) -> None:
    async with in_process_line(["register", "dqt"], state_dir) as line:
        register = line["register"]
        ready = (await draft(line))["slug"]
        sent = (await submitted(line, last_name="Sent"))["slug"]
        no_end = (await draft(line, itt_end_date=None))["slug"]
        line.calls.clear()
        for slugs, said in (
            ([ready, "nobody"], "[1] slug: Register has no trainee 'nobody'"),
            ([ready, sent], "[1] state: trainee"),
            ([ready, ready], "[1] state: trainee"),
            ([ready, no_end], "[1] itt_end_date: DQT needs it"),
        ):
            refused_whole = await register.post(SUBMIT_ALL, json=slugs, headers=API)
            assert refused_whole.status_code == 422, refused_whole.text
            assert refusal(refused_whole).startswith(said), refused_whole.text
        assert line.calls == []  # DQT never heard of them
        assert (await trainee(line, ready))["state"] == "draft"
        (request,) = ok(await register.get("/trn-requests", headers=API))
        assert request["slug"] == sent
        refused(await register.post(SUBMIT_ALL, json=[ready]), 401)
        assert ok(await register.post(SUBMIT_ALL, json=[], headers=API)) == []


async def test_a_record_system_pushes_trainees_through_the_register_api(state_dir: Path) -> None:
    async with in_process_line(["register", "dqt"], state_dir) as line:
        register, dqt = line["register"], line["dqt"]
        ok(await dqt.post("/v3/teachers/batch", json=[builders.dqt_person()], headers=API), 201)
        body = builders.register_trainee()
        Draft202012Validator(
            _json_schema(
                _operations()["/api/{api_version}/trainees"]["post"]["requestBody"]["content"][
                    "application/json"
                ]["schema"]
            )
        ).validate(body)

        info = ok(await register.get("/api/v2026.1/info", headers=SITS))
        conforms(info, "get", "/info", 200)
        unauthorized = refused(await register.get(TRAINEES), 401)
        conforms(unauthorized, "put", "/trainees/{trainee_id}", 401)
        # a token Register does not know is refused as the spec's 401 is, but as Forbidden
        guessed = {"Authorization": "Bearer guessed"}
        assert refused(await register.get(TRAINEES, headers=guessed), 403) == {"error": "Forbidden"}

        created = ok(await register.post(TRAINEES, json=body, headers=SITS), 201)
        conforms(created, "post", "/trainees", 201)
        new = created["data"]
        assert (new["state"], new["record_source"], new["trn"]) == (
            "submitted_for_trn",
            "api",
            None,
        )
        assert (new["training_route"], new["sex"], new["study_mode"]) == ("12", "10", "01")
        assert (new["course_age_range"], new["course_subject_1"]) == ("13918", "100425")
        assert (new["course_min_age"], new["course_max_age"]) == (11, 16)
        (request,) = ok(
            await register.get("/trn-requests", params={"slug": new["trainee_id"]}, headers=API)
        )
        assert request["status"] == "Pending"
        internal = await trainee(line, new["trainee_id"])
        assert (internal["training_route"], internal["sex"], internal["course_subject_one"]) == (
            "provider_led_postgrad",
            "female",
            "physics",
        )

        again = refused(await register.post(TRAINEES, json=body, headers=SITS), 409)
        conforms(again, "post", "/trainees", 409)
        assert [t["trainee_id"] for t in again["data"]] == [new["trainee_id"]]
        bad = builders.register_trainee("2610261553102", training_route="99", date_of_birth="x")
        del bad["data"]["sex"]
        rejected = refused(await register.post(TRAINEES, json=bad, headers=SITS), 422)
        conforms(rejected, "post", "/trainees", 422)
        assert sorted(error.split()[0] for error in rejected["errors"]) == [
            "date_of_birth",
            "sex",
            "training_route",
        ]

        # a trainee who already has a TRN is in training at once: no TRN request
        known = builders.register_trainee("2610261553103", trn="1234567")
        holder = ok(await register.post(TRAINEES, json=known, headers=SITS), 201)["data"]
        slug = holder["trainee_id"]
        assert (holder["state"], holder["trn"]) == ("trn_received", "1234567")
        assert dqt_route(state_dir, slug) == ("InTraining", None)
        unknown = builders.register_trainee("2610261553104", trn="7654321")
        refused(await register.post(TRAINEES, json=unknown, headers=SITS), 422, "trn")

        read = ok(await register.get(f"{TRAINEES}/{slug}", headers=SITS))
        conforms(read, "get", "/trainees/{trainee_id}", 200)
        missing = refused(await register.get(f"{TRAINEES}/nobody", headers=SITS), 404)
        conforms(missing, "get", "/trainees/{trainee_id}", 404)

        change = {"data": {"first_names": "Alice", "course_subject_1": "100403"}}
        updated = ok(await register.put(f"{TRAINEES}/{slug}", json=change, headers=SITS))
        conforms(updated, "put", "/trainees/{trainee_id}", 200)
        assert (updated["data"]["first_names"], updated["data"]["course_subject_1"]) == (
            "Alice",
            "100403",
        )
        wrong = {"data": {"course_subject_1": "999999", "first_names": None}}
        invalid = refused(await register.put(f"{TRAINEES}/{slug}", json=wrong, headers=SITS), 422)
        conforms(invalid, "put", "/trainees/{trainee_id}", 422)
        assert sorted(invalid["errors"]) == ["course_subject_1", "first_names"]

        deferral = {"data": {"defer_date": "2026-10-05"}}
        deferred = ok(await register.post(f"{TRAINEES}/{slug}/defer", json=deferral, headers=SITS))
        conforms(deferred, "post", "/trainees/{trainee_id}/defer", 200)
        assert dqt_route(state_dir, slug) == ("Deferred", None)
        twice = refused(
            await register.post(f"{TRAINEES}/{slug}/defer", json=deferral, headers=SITS),
            422,
            "'deferred'",
        )
        conforms(twice, "post", "/trainees/{trainee_id}/defer", 422)
        assert twice["errors"][0]["error"] == "StateTransitionError"

        leaver = ok(
            await register.post(
                TRAINEES,
                json=builders.register_trainee("2610261553105", trn="1234567"),
                headers=SITS,
            ),
            201,
        )["data"]["trainee_id"]
        withdrawal = {
            "data": {
                "reasons": ["personal_reasons"],
                "withdrawal_date": "2026-10-05",
                "trigger": "trainee",
                "future_interest": "no",
            }
        }
        path = f"{TRAINEES}/{leaver}/withdraw"
        incomplete = refused(
            await register.post(path, json={"data": {"reasons": []}}, headers=SITS),
            422,
            "withdrawal_date",
        )
        conforms(incomplete, "post", "/trainees/{trainee_id}/withdraw", 422)
        withdrawn = ok(await register.post(path, json=withdrawal, headers=SITS))
        conforms(withdrawn, "post", "/trainees/{trainee_id}/withdraw", 200)
        assert dqt_route(state_dir, leaver) == ("Withdrawn", None)

        qualifier = ok(
            await register.post(
                TRAINEES,
                json=builders.register_trainee("2610261553106", trn="1234567"),
                headers=SITS,
            ),
            201,
        )["data"]["trainee_id"]
        path = f"{TRAINEES}/{qualifier}/recommend-for-qts"
        future = {"data": {"qts_standards_met_date": "2026-10-06"}}
        early = refused(await register.post(path, json=future, headers=SITS), 422, "future")
        conforms(early, "post", "/trainees/{trainee_id}/recommend-for-qts", 422)
        met = {"data": {"qts_standards_met_date": "2026-10-05"}}
        recommended = ok(await register.post(path, json=met, headers=SITS), 202)
        conforms(recommended, "post", "/trainees/{trainee_id}/recommend-for-qts", 202)
        assert recommended["data"]["state"] == "awarded"
        assert dqt_route(state_dir, qualifier) == ("Holds", "2026-10-05")

        listed = ok(await register.get(TRAINEES, params={"per_page": "2"}, headers=SITS))
        conforms(listed, "get", "/trainees", 200)
        assert listed["meta"] == {
            "current_page": 1,
            "total_pages": 2,
            "total_count": 4,
            "per_page": 2,
        }
        with_trn = ok(await register.get(TRAINEES, params={"has_trn": "false"}, headers=SITS))
        assert [t["trainee_id"] for t in with_trn["data"]] == [new["trainee_id"]]
        later = await register.get(TRAINEES, params={"since": "2026-10-06"}, headers=SITS)
        refused(later, 404, "No trainees found")
        bad_filter = refused(
            await register.get(TRAINEES, params={"status": "graduated"}, headers=SITS), 422
        )
        conforms(bad_filter, "get", "/trainees", 422)
        assert bad_filter["errors"] == {"status": ["graduated is not a valid status"]}


def test_the_spec_check_can_fail() -> None:
    with pytest.raises(ValidationError):
        conforms({"data": {"trainee_id": "x"}}, "post", "/trainees", 201)


async def test_the_weekly_school_import_skips_universities_and_keeps_schools_in_use(
    state_dir: Path,
) -> None:
    async with in_process_line(NAMES, state_dir) as line:
        gias = line["gias"]
        schools = [
            builders.school("100000", open_date="2001-09-01"),
            builders.school("100001", name="University of Poppleton", type_code="29"),
            builders.school("100002", name="Bow School"),
        ]
        ok(await gias.post("/schools/batch", json=schools, headers=API), 201)
        await draft(line, employing_school_urn="100002")
        # only GIAS and Register take part: the others' clocks may stay behind
        both = LineControl({name: line[name] for name in ("gias", "register")}, ADMIN_TOKEN, LINE)

        before = await both.advance(to=START + timedelta(days=6, hours=2, minutes=29))
        assert runs(before, "gias.school.register") == []
        (sunday,) = runs(await both.advance(by="1m"), "gias.school.register")
        assert sunday["due_at"] == "2026-10-11T02:30:00+00:00"
        copies = ok(await line["register"].get("/copies/school"))["copies"]
        assert [(c["urn"], c["open_date"]) for c in copies] == [
            ("100000", "01-09-2001"),
            ("100002", None),
        ]

        # both schools leave the file Register reads: the one a trainee uses is kept, flagged
        for urn in ("100000", "100002"):
            ok(await gias.patch(f"/schools/{urn}", json={"type_code": "29"}, headers=API))
        (week_later,) = runs(await both.advance(by="7d"), "gias.school.register")
        assert (week_later["result"]["deleted"], week_later["result"]["flagged"]) == (1, 1)
        (kept,) = ok(await line["register"].get("/copies/school"))["copies"]
        assert (kept["urn"], kept["source_deleted_at"]) == ("100002", "2026-10-18T02:30:00Z")


async def test_hesa_records_become_trainees_daily_at_five(state_dir: Path) -> None:
    async with in_process_line(NAMES, state_dir) as line:
        students = "/apis/itt/1.1/students"
        ok(await line["hesa"].post(students, json=builders.itt_student(), headers=API), 201)
        holder = builders.itt_student("0310261553102", F_TRN="1234567", F_SBJCA1="100403")
        ok(await line["hesa"].post(students, json=holder, headers=API), 201)
        both = LineControl({name: line[name] for name in ("hesa", "register")}, ADMIN_TOKEN, LINE)

        ran = await both.advance(to=START + timedelta(hours=8))
        (early,) = runs(ran, "register.sync_hesa_students")
        assert early["result"]["created"] == 0  # the collection is first read at 08:00
        (collected,) = runs(ran, "hesa.itt_record.register")
        assert collected["result"]["upserted"] == 2

        ran = await both.advance(to=START + timedelta(days=1, hours=5))
        assert runs(ran, "register.sync_hesa_students")[-1]["result"] == {
            "created": 2,
            "updated": 0,
            "unchanged": 0,
            "incomplete": 0,
        }
        listed = ok(await line["register"].get("/trainees", headers=API))
        made = {t["hesa_id"]: t for t in listed}
        dave = made["0310261553101"]
        assert {
            name: dave[name]
            for name in (
                "record_source",
                "state",
                "trn",
                "first_names",
                "last_name",
                "date_of_birth",
                "ukprn",
                "provider_trainee_id",
                "itt_aim",
                "study_mode",
                "itt_start_date",
                "course_subject_one",
            )
        } == {
            "record_source": "hesa",
            "state": "draft",
            "trn": None,
            "first_names": "Dave",
            "last_name": "George",
            "date_of_birth": "1978-08-13",
            "ukprn": "10007713",
            "provider_trainee_id": "99157234/2/01",
            "itt_aim": "202",
            "study_mode": "full_time",
            "itt_start_date": "2026-09-01",
            "course_subject_one": "biology",
        }
        with_trn = made["0310261553102"]
        assert (with_trn["state"], with_trn["trn"], with_trn["course_subject_one"]) == (
            "trn_received",
            "1234567",
            "mathematics",
        )

        renamed = builders.itt_student(F_SURNAME="Georgiou")
        ok(await line["hesa"].post(students, json=renamed, headers=API))
        ran = await both.advance(to=START + timedelta(days=2, hours=5))
        assert runs(ran, "register.sync_hesa_students")[-1]["result"] == {
            "created": 0,
            "updated": 1,
            "unchanged": 1,
            "incomplete": 0,
        }
        after = await trainee(line, dave["slug"])
        assert (after["last_name"], after["version"]) == ("Georgiou", 2)


async def test_a_record_system_sees_and_changes_only_its_own_providers_trainees(
    state_dir: Path,
) -> None:
    banner = headers_of("banner", "register")
    async with in_process_line(["register", "dqt"], state_dir) as line:
        register = line["register"]
        # U05 runs Banner, U01 SITS: each system pushes its own university's trainee
        assert (record_system_for("U05"), record_system_for("U01")) == ("banner", "sits")
        pushed = builders.register_trainee("2610261553201", provider_code="U05")
        theirs = ok(await register.post(TRAINEES, json=pushed, headers=banner), 201)["data"]
        own = builders.register_trainee()
        slug = ok(await register.post(TRAINEES, json=own, headers=SITS), 201)["data"]["trainee_id"]
        other = theirs["trainee_id"]

        listed = ok(await register.get(TRAINEES, headers=SITS))["data"]
        assert [t["trainee_id"] for t in listed] == [slug]
        deferral = {"data": {"defer_date": "2026-10-05"}}
        for method, path, body in (
            ("GET", f"{TRAINEES}/{other}", None),
            ("PUT", f"{TRAINEES}/{other}", {"data": {"first_names": "Robert"}}),
            ("POST", f"{TRAINEES}/{other}/defer", deferral),
        ):
            response = await register.request(method, path, json=body, headers=SITS)
            refused(response, 404, "not found")
        # nor may it give a trainee to a provider it does not serve, new or old
        stolen = builders.register_trainee("2610261553202", provider_code="U05")
        refused(await register.post(TRAINEES, json=stolen, headers=SITS), 422, "provider_code")
        moved = {"data": {"provider_code": "U05"}}
        refused(await register.put(f"{TRAINEES}/{slug}", json=moved, headers=SITS), 422, "U05")

        # the operator sees and changes both; Banner's trainee is untouched by SITS's tries
        everyone = ok(await register.get(TRAINEES, headers=API))["data"]
        assert {t["trainee_id"] for t in everyone} == {slug, other}
        assert ok(await register.get(f"{TRAINEES}/{other}", headers=API))["first_names"] == "Priya"
        deferred = ok(await register.post(f"{TRAINEES}/{other}/defer", json=deferral, headers=API))
        assert deferred["data"]["state"] == "deferred"

        # a record system's token reaches the Register API alone, not Register's own
        for method, path, body in (
            ("GET", "/trainees", None),
            ("GET", f"/trainees/{slug}", None),
            ("POST", f"/trainees/{slug}/defer", {}),
        ):
            for headers in (SITS, banner):
                response = await register.request(method, path, json=body, headers=headers)
                assert response.status_code == 403, (method, path, response.text)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"itt_start_date": "2027-09-01", "itt_end_date": "2027-07-31"}, "itt_end_date"),
        ({"course_min_age": 16, "course_max_age": 11}, "course_max_age"),
        ({"course_uuid": "0a1b2c3d-0000-4000-8000-000000000000"}, "course_uuid"),
    ],
)
async def test_a_draft_register_could_not_train_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["register", "dqt"], state_dir) as line:
        answer = await line["register"].post(
            "/trainees", json=builders.register_draft(**change), headers=API
        )
        assert answer.status_code == 422, answer.text
        assert names_field(answer, field), answer.text
        assert (await line["register"].get("/trainees", headers=API)).json() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"first_names": 1}, "first_names"),
        ({"degrees_attributes": "x"}, "degrees_attributes"),
        ({"placements_attributes": [{"urn": "1" * 1_000_000}]}, "placements_attributes"),
        ({"application_id": "abc"}, "application_id"),
    ],
)
async def test_a_register_api_trainee_of_the_wrong_shape_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["register", "dqt"], state_dir) as line:
        body = builders.register_trainee()
        body["data"].update(change)
        answer = refused(await line["register"].post(TRAINEES, json=body, headers=SITS), 422)
        assert any(error.startswith(field) for error in answer["errors"]), answer
        assert (await line["register"].get("/trainees", headers=API)).json() == []
