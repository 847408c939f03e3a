"""The DQT stub: TRN requests completed on the simulated clock, persons by TRN, routes to QTS."""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from lines.becoming_a_teacher.readers import DqtTeacherReader
from lines.becoming_a_teacher.topology import LINE
from serviceline.testing import (
    ADMIN,
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

SPEC = reference("specs", "dqt-api-v3-2023-05.json")
REGISTER = headers_of("register", "dqt")
REQUEST = "2fa3e0c4-0d55-4d5c-9f0e-3b1c1f0e6a01"
ROUTE = "/v3/persons/{trn}/routes-to-professional-statuses/{reference}"
# the 2023 spec's induction statuses were DQT's; TRS has served these since
TRS_INDUCTION_STATUSES = [
    "None",
    "RequiredToComplete",
    "Exempt",
    "InProgress",
    "Passed",
    "Failed",
    "FailedInWales",
]


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: a `nullable` schema also admits null."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


@functools.cache
def _components() -> dict[str, Any]:
    components: dict[str, Any] = _json_schema(json.loads(SPEC.read_text())["components"])
    components["schemas"]["InductionStatus"]["enum"] = TRS_INDUCTION_STATUSES
    return components


def conforms(body: Any, schema: str) -> None:
    root = {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(body)


def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json() if response.content else None


def field_named(response: httpx.Response, field: str) -> bool:
    detail = response.json()["detail"]
    return names_field(response, field) or any(field in error["msg"] for error in detail)


async def request_trn(line: LineUnderTest, request_id: str = REQUEST, **person: Any) -> Any:
    body = builders.trn_request(request_id, **person)
    return ok(await line["dqt"].post("/v3/trn-requests", json=body, headers=REGISTER))


async def trn_request(line: LineUnderTest, request_id: str = REQUEST) -> Any:
    params = {"requestId": request_id}
    return ok(await line["dqt"].get("/v3/trn-requests", params=params, headers=REGISTER))


async def records(line: LineUnderTest) -> dict[str, Any]:
    """Every person as DQT's kernel serves them, with what the public API leaves out."""
    body = ok(await line["dqt"].get("/records/teacher", headers=AUDITOR))
    return {record["trn"]: record for record in body["records"]}


async def seed(line: LineUnderTest, *people: dict[str, Any]) -> None:
    created = ok(await line["dqt"].post("/v3/teachers/batch", json=list(people), headers=API), 201)
    assert created == {"created": len(people)}


async def completed_trn(line: LineUnderTest, request_id: str = REQUEST, **person: Any) -> str:
    await request_trn(line, request_id, **person)
    await line.control.advance(by="2h")
    trn: str = (await trn_request(line, request_id))["trn"]
    return trn


async def test_a_trn_request_stays_pending_until_the_delay_has_passed(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await seed(line, builders.dqt_person())
        accepted = await request_trn(line)
        assert accepted == {"requestId": REQUEST, "status": "Pending", "trn": None}
        assert await trn_request(line) == accepted
        clock = ok(await line["dqt"].get("/admin/clock", headers=ADMIN))
        assert clock["next_job"] == "dqt.complete_trn_requests"
        assert clock["next_due"] == "2026-10-05T02:00:00Z"

        assert await line.control.advance(by="1h59m") == []
        assert (await trn_request(line))["status"] == "Pending"

        ran = await line.control.advance(by="1m")
        assert [(job["job"], job["result"]) for job in ran] == [
            ("dqt.complete_trn_requests", {"completed": 1})
        ]
        completed = await trn_request(line)
        assert completed["status"] == "Completed"
        trn = completed["trn"]
        assert re.fullmatch(r"\d{7}", trn)
        assert trn != "1234567"
        person = ok(await line["dqt"].get(f"/v3/persons/{trn}", headers=AUDITOR))
        assert (person["firstName"], person["middleName"], person["lastName"]) == (
            "Boris",
            "Ivan",
            "Brown",
        )
        assert (person["dateOfBirth"], person["qts"]) == ("1985-02-13", None)
        trainee = (await records(line))[trn]
        assert trainee["kind"] == "trainee"
        assert trainee["email"] == "boris.brown@example.com"
        assert trainee["source_trn_request_id"] == REQUEST
        assert trainee["updated_at"] == "2026-10-05T02:00:00Z"
        jobs = ok(await line["dqt"].get("/admin/jobs", headers=ADMIN))
        completions = [job for job in jobs if job["name"] == "dqt.complete_trn_requests"]
        assert completions[0]["due_at"] is None


async def test_each_request_completes_at_its_own_time_with_the_next_trn(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await request_trn(line, "first")
        await line.control.advance(by="1h")
        await request_trn(line, "second", firstName="Ada", lastName="Lovelace")
        await line.control.advance(by="1h")
        first = await trn_request(line, "first")
        assert first["status"] == "Completed"
        assert (await trn_request(line, "second"))["status"] == "Pending"
        await line.control.advance(by="1h")
        second = await trn_request(line, "second")
        assert int(second["trn"]) == int(first["trn"]) + 1
        people = await records(line)
        assert people[first["trn"]]["updated_at"] == "2026-10-05T02:00:00Z"
        assert people[second["trn"]]["updated_at"] == "2026-10-05T03:00:00Z"
        assert people[second["trn"]]["first_name"] == "Ada"


async def test_a_pending_request_survives_a_restart(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await request_trn(line)
    async with in_process_line(["dqt"], state_dir) as line:
        assert (await trn_request(line))["status"] == "Pending"
        await line.control.advance(by="2h")
        assert (await trn_request(line))["status"] == "Completed"


async def test_trn_requests_are_refused_when_repeated_unknown_or_unauthorised(
    state_dir: Path,
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        await request_trn(line)
        again = await dqt.post(
            "/v3/trn-requests", json=builders.trn_request(firstName="Other"), headers=REGISTER
        )
        assert again.status_code == 409
        assert field_named(again, "requestId")

        unknown = await dqt.get("/v3/trn-requests", params={"requestId": "nope"}, headers=API)
        assert unknown.status_code == 404
        assert field_named(unknown, "requestId")
        missing = await dqt.get("/v3/trn-requests", headers=API)
        assert missing.status_code == 422
        assert field_named(missing, "requestId")

        body = builders.trn_request("another")
        assert (await dqt.post("/v3/trn-requests", json=body)).status_code == 401
        guessed = {"Authorization": "Bearer guessed"}
        assert (await dqt.post("/v3/trn-requests", json=body, headers=guessed)).status_code == 403
        assert (await dqt.get("/v3/trn-requests", params={"requestId": REQUEST})).status_code == 401
        assert (await dqt.post("/v3/trn-requests", json=body, headers=API)).is_success


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requestId": "x" * 101}, "requestId"),
        ({"requestId": "has space"}, "requestId"),
        ({"person": {"lastName": "Brown", "dateOfBirth": "1985-02-13"}}, "firstName"),
        ({"person": {**builders.trn_request()["person"], "lastName": "  "}}, "lastName"),
        ({"person": {**builders.trn_request()["person"], "firstName": "x" * 101}}, "firstName"),
        (
            {"person": {**builders.trn_request()["person"], "dateOfBirth": "13/02/1985"}},
            "dateOfBirth",
        ),
        (
            {"person": {**builders.trn_request()["person"], "dateOfBirth": "2026-10-05"}},
            "person.dateOfBirth",
        ),
        (
            {"person": {**builders.trn_request()["person"], "nationalInsuranceNumber": "QQ12345"}},
            "nationalInsuranceNumber",
        ),
        (
            {"person": {**builders.trn_request()["person"], "emailAddresses": ["boris"]}},
            "emailAddresses",
        ),
    ],
)
async def test_a_bad_trn_request_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        body = {**builders.trn_request(), **change}
        refused = await line["dqt"].post("/v3/trn-requests", json=body, headers=REGISTER)
        assert refused.status_code == 422, refused.text
        assert field_named(refused, field), refused.text
        await line.control.advance(by="1d")
        assert await records(line) == {}


BATCH = "/v3/trn-requests/batch"


def three_requests() -> list[dict[str, Any]]:
    return [
        builders.trn_request("first"),
        builders.trn_request("second", firstName="Ada", lastName="Lovelace", emailAddresses=[]),
        builders.trn_request("third", middleName=None, nationalInsuranceNumber=None),
    ]


def runs(ran: list[dict[str, Any]], job: str) -> list[Any]:
    return [run["result"] for run in ran if run["job"] == job]


async def feed(line: LineUnderTest) -> list[dict[str, Any]]:
    page = ok(await line["dqt"].get("/feed/teacher", headers=AUDITOR))
    changes: list[dict[str, Any]] = page["changes"]
    return changes


async def test_a_batch_of_trn_requests_is_kept_as_that_many_single_requests(
    state_dir: Path,
) -> None:
    for name in ("single", "batch"):
        (state_dir / name).mkdir()
    async with (
        in_process_line(["dqt"], state_dir / "single") as single,
        in_process_line(["dqt"], state_dir / "batch") as batch,
    ):
        for line in (single, batch):
            await seed(line, builders.dqt_person())
            await line.control.advance(by="10m")
        answers = [
            ok(await single["dqt"].post("/v3/trn-requests", json=body, headers=REGISTER))
            for body in three_requests()
        ]
        assert ok(await batch["dqt"].post(BATCH, json=three_requests(), headers=REGISTER)) == (
            answers
        )
        assert [answer["status"] for answer in answers] == ["Pending"] * 3
        for line in (single, batch):
            assert runs(await line.control.advance(by="2h"), "dqt.complete_trn_requests") == [
                {"completed": 3}
            ]
        for request_id in ("first", "second", "third"):
            assert await trn_request(batch, request_id) == await trn_request(single, request_id)
        assert await records(batch) == await records(single)
        assert await feed(batch) == await feed(single)
        assert len(await feed(batch)) == 4


async def test_a_batch_of_trn_requests_is_refused_whole_naming_the_request(
    state_dir: Path,
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        await request_trn(line, "first")
        made = builders.trn_request("first")
        new = builders.trn_request("new")
        for body in ([new, made], [new, new]):
            again = await dqt.post(BATCH, json=body, headers=REGISTER)
            assert again.status_code == 409, again.text
            assert again.json()["detail"].startswith("[1] requestId:"), again.text
        for bad, field in (
            (builders.trn_request("x", dateOfBirth="2026-10-05"), "[1] person.dateOfBirth"),
            (builders.trn_request("x", lastName=" "), "[1] person.lastName"),
            ({**builders.trn_request(), "requestId": "has space"}, "[1] requestId"),
        ):
            refused = await dqt.post(BATCH, json=[new, bad], headers=REGISTER)
            assert refused.status_code == 422, refused.text
            assert refusal(refused).startswith(f"{field}:"), refused.text
        unknown = await dqt.get("/v3/trn-requests", params={"requestId": "new"}, headers=API)
        assert unknown.status_code == 404
        assert (await dqt.post(BATCH, json=[new])).status_code == 401
        assert ok(await dqt.post(BATCH, json=[], headers=REGISTER)) == []
        await line.control.advance(by="1d")
        assert [person["source_trn_request_id"] for person in (await records(line)).values()] == [
            "first"
        ]


async def test_a_widow_with_a_trainees_name_and_birth_date_stays_a_separate_person(
    state_dir: Path,
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        # she draws her late husband's teachers' pension: DQT holds her, but she never taught
        widow = builders.dqt_person(
            "1234567",
            first_name="Boris",
            last_name="Brown",
            date_of_birth="1985-02-13",
            qts_date=None,
            induction_status="None",
            kind="other",
        )
        await seed(line, widow)
        trn = await completed_trn(line)
        assert trn != "1234567"
        people = await records(line)
        assert {key: person["kind"] for key, person in people.items()} == {
            "1234567": "other",
            trn: "trainee",
        }
        same = ("firstName", "lastName", "dateOfBirth")
        hers = ok(await line["dqt"].get("/v3/teachers/1234567", headers=AUDITOR))
        his = ok(await line["dqt"].get(f"/v3/teachers/{trn}", headers=AUDITOR))
        assert [hers[name] for name in same] == [his[name] for name in same]

        holds = builders.professional_status_route("Holds", holdsFrom="2026-10-05")
        put = await line["dqt"].put(
            ROUTE.format(trn=trn, reference="trainee-1"), json=holds, headers=REGISTER
        )
        assert put.status_code == 204, put.text
        assert (await records(line))["1234567"] == people["1234567"]
        assert ok(await line["dqt"].get("/v3/teachers/1234567", headers=AUDITOR))["qts"] is None
        assert ok(await line["dqt"].get(f"/v3/teachers/{trn}", headers=AUDITOR))["qts"] == {
            "awarded": "2026-10-05"
        }


async def test_a_route_that_holds_awards_qts(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        trn = await completed_trn(line)
        path = ROUTE.format(trn=trn, reference="trainee-1")
        training = builders.professional_status_route()
        put = await dqt.put(path, json=training, headers=REGISTER)
        assert (put.status_code, put.content) == (204, b"")
        assert ok(await dqt.get(f"/v3/persons/{trn}", headers=AUDITOR))["qts"] is None
        before = (await records(line))[trn]
        assert (before["kind"], before["version"]) == ("trainee", 1)

        holds = builders.professional_status_route("Holds", holdsFrom="2026-10-05")
        assert (await dqt.put(path, json=holds, headers=REGISTER)).status_code == 204
        person = ok(await dqt.get(f"/v3/persons/{trn}", headers=AUDITOR))
        assert person["qts"] == {"awarded": "2026-10-05"}
        after = (await records(line))[trn]
        assert (after["kind"], after["qts_date"], after["version"]) == ("teacher", "2026-10-05", 2)

        unknown = await dqt.put(
            ROUTE.format(trn="7654321", reference="trainee-2"), json=training, headers=REGISTER
        )
        assert unknown.status_code == 404
        assert field_named(unknown, "trn")
        assert (await dqt.put(path, json=training)).status_code == 401


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "Holds"}, "holdsFrom"),
        ({"status": "Holds", "holdsFrom": "2026-10-06"}, "holdsFrom"),
        ({"holdsFrom": "2026-10-01"}, "holdsFrom"),
        ({"trainingEndDate": "2026-09-01"}, "trainingEndDate"),
        ({"status": "Awarded"}, "status"),
        ({"routeToProfessionalStatusTypeId": "provider-led"}, "routeToProfessionalStatusTypeId"),
        (
            {"trainingSubjectReferences": ["100425", "100346", "101038", "100358"]},
            "trainingSubjectReferences",
        ),
        ({"trainingAgeSpecialism": {"type": "Range", "from": 11}}, "trainingAgeSpecialism"),
        (
            {"trainingAgeSpecialism": {"type": "KeyStage2", "from": 7, "to": 11}},
            "trainingAgeSpecialism",
        ),
        ({"trainingProviderUkprn": "1000778"}, "trainingProviderUkprn"),
        ({"trainingStartDate": None}, "trainingStartDate"),
    ],
)
async def test_a_bad_route_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await seed(line, builders.dqt_person(qts_date=None, kind="trainee"))
        body = builders.professional_status_route(**change)
        path = ROUTE.format(trn="1234567", reference="trainee-1")
        refused = await line["dqt"].put(path, json=body, headers=REGISTER)
        assert refused.status_code == 422, refused.text
        assert field_named(refused, field), refused.text
        assert (await records(line))["1234567"]["version"] == 1


async def test_a_bad_reference_is_refused(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await seed(line, builders.dqt_person())
        body = builders.professional_status_route()
        path = ROUTE.format(trn="1234567", reference="trainee 1")
        refused = await line["dqt"].put(path, json=body, headers=REGISTER)
        assert refused.status_code == 422
        assert field_named(refused, "reference")


async def test_a_person_is_served_as_the_spec_says(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        await seed(
            line,
            builders.dqt_person(eyts_date="1984-07-01", induction_status="Passed"),
            builders.dqt_person(
                "7654321",
                qts_date=None,
                induction_status="None",
                kind="trainee",
                middle_name="Anne",
            ),
            builders.dqt_person("1111111", status="Deactivated"),
        )
        teacher = ok(await dqt.get("/v3/teachers/1234567", headers=AUDITOR))
        conforms(teacher, "GetTeacherResponse")
        assert teacher == {
            "trn": "1234567",
            "firstName": "Margaret",
            "middleName": "",
            "lastName": "Thompson",
            "dateOfBirth": "1962-04-09",
            "nationalInsuranceNumber": "QQ123456C",
            "qts": {"awarded": "1985-07-01"},
            "eyts": {"awarded": "1984-07-01"},
            "induction": {"status": "Passed"},
        }
        assert ok(await dqt.get("/v3/persons/1234567", headers=AUDITOR)) == teacher
        trainee = ok(await dqt.get("/v3/persons/7654321", headers=AUDITOR))
        conforms(trainee, "GetTeacherResponse")
        assert (trainee["middleName"], trainee["qts"], trainee["induction"]) == (
            "Anne",
            None,
            {"status": "None"},
        )

        born = {"dateOfBirth": "1962-04-09"}
        assert ok(await dqt.get("/v3/teachers/1234567", params=born, headers=AUDITOR)) == teacher
        wrong = await dqt.get(
            "/v3/teachers/1234567", params={"dateOfBirth": "1962-04-10"}, headers=AUDITOR
        )
        assert wrong.status_code == 404
        assert field_named(wrong, "dateOfBirth")
        garbled = await dqt.get(
            "/v3/teachers/1234567", params={"dateOfBirth": "09/04/1962"}, headers=AUDITOR
        )
        assert garbled.status_code == 422
        assert field_named(garbled, "dateOfBirth")
        for missing in ("/v3/teachers/9999999", "/v3/persons/1111111", "/v3/teachers/x"):
            gone = await dqt.get(missing, headers=AUDITOR)
            assert gone.status_code == 404, missing
            assert field_named(gone, "trn")


async def test_a_name_change_renames_the_person(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        await seed(line, builders.dqt_person())
        change = {"trn": "1234567", "firstName": "Margaret", "lastName": "Hughes"}
        ok(await dqt.post("/v3/teachers/name-changes", json=change, headers=API), 204)
        teacher = ok(await dqt.get("/v3/teachers/1234567", headers=AUDITOR))
        assert (teacher["firstName"], teacher["lastName"]) == ("Margaret", "Hughes")
        assert (await records(line))["1234567"]["version"] == 2

        unknown = await dqt.post(
            "/v3/teachers/name-changes", json={**change, "trn": "9999999"}, headers=API
        )
        assert unknown.status_code == 404
        assert field_named(unknown, "trn")
        for wrong, field in (({"lastName": ""}, "lastName"), ({"surname": "Hughes"}, "surname")):
            refused = await dqt.post(
                "/v3/teachers/name-changes", json={**change, **wrong}, headers=API
            )
            assert refused.status_code == 422, refused.text
            assert field_named(refused, field)
        unauthorised = await dqt.post("/v3/teachers/name-changes", json=change)
        assert unauthorised.status_code == 401


async def test_mentors_are_read_one_trn_at_a_time_as_placements_reads_them(
    state_dir: Path,
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await seed(line, builders.dqt_person(), builders.dqt_person("7654321", first_name="Ann"))
        async with line.upstream("placements", "dqt") as dqt:
            reader = DqtTeacherReader(dqt, ["7654321", "9999999", "1234567"])
            pages = [page async for page in reader.pages(datetime(2026, 10, 5, tzinfo=UTC))]
        assert [record.key for page in pages for record in page.records] == ["7654321", "1234567"]
        edge = LINE.edge("dqt.teacher.placements")
        copied = [edge.translate(record.fields) for record in pages[0].records]
        assert copied == [
            {"trn": "7654321", "first_name": "Ann", "last_name": "Thompson"},
            {"trn": "1234567", "first_name": "Margaret", "last_name": "Thompson"},
        ]


FIND = "/v3/persons/find"


def asked(*persons: tuple[str, str]) -> dict[str, Any]:
    return {"persons": [{"trn": trn, "dateOfBirth": born} for trn, born in persons]}


async def test_persons_are_found_only_by_their_trn_and_date_of_birth_together(
    state_dir: Path,
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        await seed(
            line,
            builders.dqt_person(),
            builders.dqt_person("7654321", first_name="Ann", middle_name="Jane"),
            builders.dqt_person("1111111", status="Deactivated"),
        )
        query = asked(
            ("7654321", "1962-04-09"),
            ("1234567", "1962-04-10"),
            ("9999999", "1962-04-09"),
            ("1111111", "1962-04-09"),
            ("7654321", "1962-04-09"),
        )
        async with line.upstream("placements", "dqt") as dqt:
            found = await dqt.post_json(FIND, query)
        assert found == {
            "total": 1,
            "query": query,
            "results": [
                {
                    "trn": "7654321",
                    "firstName": "Ann",
                    "middleName": "Jane",
                    "lastName": "Thompson",
                    "dateOfBirth": "1962-04-09",
                }
            ],
        }
        both = ok(await line["dqt"].post(FIND, json=asked(("1234567", "1962-04-09")), headers=API))
        assert [person["trn"] for person in both["results"]] == ["1234567"]


async def test_a_find_of_too_many_persons_or_a_bad_one_is_refused_naming_the_field(
    state_dir: Path,
) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        await seed(line, builders.dqt_person())
        most = asked(*[(f"{n:07}", "1962-04-09") for n in range(1_000_000, 1_000_500)])
        assert ok(await dqt.post(FIND, json=most, headers=API))["total"] == 0
        too_many = {"persons": [*most["persons"], most["persons"][0]]}
        for body, field in (
            (too_many, "persons"),
            ({}, "persons"),
            (asked(("12345", "1962-04-09")), "trn"),
            (asked(("1234567", "09/04/1962")), "dateOfBirth"),
        ):
            refused = await dqt.post(FIND, json=body, headers=API)
            assert refused.status_code == 422, refused.text
            assert field_named(refused, field), refused.text
        assert (await dqt.post(FIND, json=asked())).status_code == 401
        assert (await dqt.post(FIND, json=asked(), headers=AUDITOR)).status_code == 403


async def test_the_seed_batch_checks_each_person(state_dir: Path) -> None:
    async with in_process_line(["dqt"], state_dir) as line:
        dqt = line["dqt"]
        await seed(line, builders.dqt_person())
        again = [builders.dqt_person("7654321"), builders.dqt_person()]
        assert (await dqt.post("/v3/teachers/batch", json=again, headers=API)).status_code == 409
        for change, field in (
            ({"trn": "123456"}, "trn"),
            ({"kind": "widow"}, "kind"),
            ({"induction_status": "Fail"}, "induction_status"),
            ({"national_insurance_number": "123"}, "national_insurance_number"),
        ):
            refused = await dqt.post(
                "/v3/teachers/batch", json=[builders.dqt_person(**change)], headers=API
            )
            assert refused.status_code == 422, refused.text
            assert field_named(refused, field)
        assert list(await records(line)) == ["1234567"]
        assert (await dqt.post("/v3/teachers/batch", json=[])).status_code == 401
