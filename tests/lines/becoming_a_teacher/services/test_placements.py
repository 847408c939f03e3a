"""Placements: copies of GIAS, Publish and DQT on their nightly schedules; what it owns itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from lines.becoming_a_teacher.stubs.dqt.models import Teacher
from serviceline.runtime.db import make_engine
from serviceline.testing import API, AUDITOR, LineUnderTest, in_process_line, names_field, refusal
from tests import builders

pytestmark = pytest.mark.anyio

LINE = ["gias", "publish", "dqt", "placements"]
SCHOOLS = "gias.school.placements"
PROVIDERS = "publish.provider.placements"
TEACHERS = "dqt.teacher.placements"


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def answered(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def refused(response: httpx.Response, code: int, field: str) -> str:
    assert response.status_code == code, response.text
    assert names_field(response, field), response.text
    return response.text


async def copied(line: LineUnderTest, *schools: dict[str, Any]) -> None:
    """These schools in GIAS, provider 2FR in Publish, one teacher in DQT; copied now."""
    answered(await line["gias"].post("/schools/batch", json=list(schools), headers=API), 201)
    answered(await line["publish"].post("/providers", json=builders.provider(), headers=API), 201)
    people = [builders.dqt_person()]
    answered(await line["dqt"].post("/v3/teachers/batch", json=people, headers=API), 201)
    await line.control.run_job("gias", "gias.daily_extract")
    for edge in (SCHOOLS, PROVIDERS):
        await line.control.run_edge(edge)


def rename_in_dqt(state_dir: Path, trn: str, first_name: str, last_name: str) -> None:
    """A teacher's change of name, made inside DQT: the stub has no API for it, as TRS has none."""
    engine = make_engine(f"sqlite:///{state_dir / 'dqt.db'}")
    with Session(engine) as session:
        teacher = session.get(Teacher, trn)
        assert teacher is not None
        teacher.first_name, teacher.last_name = first_name, last_name
        session.add(teacher)
        session.commit()
    engine.dispose()


async def test_only_open_english_schools_are_copied_each_with_its_funding_region(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(
            line,
            builders.school("100000"),
            builders.school("100001", status_code="3", la_name="Barnet"),
            builders.school("100002", status_code="2", close_date="2026-08-31"),
            builders.school("100003", status_code="4"),
            builders.school("100004", type_code="30", la_name="Cardiff", region_code="W"),
            builders.school("100005", type_code="25"),
            builders.school("100006", type_code="37"),
            builders.school("100007", la_name="Surrey", region_code="J"),
            builders.school("100008", la_name="Leeds", region_code="D"),
        )
        schools = answered(await line["placements"].get("/schools"))
        regions = {school["urn"]: school["funding_region"] for school in schools}
        assert regions == {
            "100000": "Inner London",
            "100001": "Outer London",
            "100007": "Fringe",
            "100008": "Rest of England",
        }
        aldgate = answered(await line["placements"].get("/schools/100000"))
        assert aldgate["name"] == "The Aldgate School"
        assert aldgate["local_authority_name"] == "City of London"
        assert (aldgate["type_of_establishment"], aldgate["phase"]) == (
            "Voluntary aided school",
            "Primary",
        )
        assert (aldgate["region"], aldgate["minimum_age"], aldgate["maximum_age"]) == (
            "London",
            3,
            11,
        )
        assert (aldgate["appetite"], aldgate["placements_service"]) == (None, False)
        assert "status_code" not in aldgate
        closed = await line["placements"].get("/schools/100002")
        assert closed.status_code == 404
        assert names_field(closed, "urn")


async def test_a_school_closed_in_gias_leaves_at_the_2330_import_unless_placements_uses_it(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        urns = ["100001", "100002", "100003", "100004", "100005"]
        await copied(line, *(builders.school(urn) for urn in urns))
        placements = line["placements"]
        partnership = {"school_urn": "100001", "provider_code": "2FR"}
        answered(await placements.post("/partnerships", json=partnership, headers=API), 201)
        placement = builders.placement("100002")
        answered(await placements.post("/placements", json=placement, headers=API), 201)
        mentor = builders.mentor(school_urn="100003")
        answered(await placements.post("/mentors", json=mentor, headers=API), 201)
        onboarded = {"placements_service": True}
        answered(await placements.patch("/schools/100004", json=onboarded, headers=API))

        await line.control.advance(to=at(5, 12))
        for urn in urns:
            answered(
                await line["gias"].patch(f"/schools/{urn}", json={"status_code": "2"}, headers=API)
            )
        # the 5th's file is published at midnight and imported at 23:30 on the 6th
        await line.control.advance(to=at(6, 23, 29))
        assert len(answered(await placements.get("/schools"))) == 5
        ran = await line.control.advance(to=at(6, 23, 30))
        assert [job["due_at"] for job in ran if job["job"] == SCHOOLS] == [
            at(6, 23, 30).isoformat()
        ]

        gone = await placements.get("/schools/100005")
        assert gone.status_code == 404
        for urn in urns[:4]:
            kept = answered(await placements.get(f"/schools/{urn}"))
            assert kept["source_deleted_at"] == "2026-10-06T23:30:00Z", urn
        again = await placements.post("/placements", json=placement, headers=API)
        assert "left GIAS" in refused(again, 422, "school_urn")


async def test_a_mentor_is_added_by_trn_and_date_of_birth_as_dqt_holds_them(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"), builders.school("100001"))
        placements = line["placements"]
        added = answered(
            await placements.post("/mentors", json=builders.mentor(), headers=API), 201
        )
        assert (added["first_name"], added["last_name"]) == ("Margaret", "Thompson")
        assert (added["school_urns"], added["version"]) == (["100000"], 1)

        wrong_birthday = builders.mentor(school_urn="100001", date_of_birth="1962-04-10")
        refused(
            await placements.post("/mentors", json=wrong_birthday, headers=API),
            422,
            "date_of_birth",
        )
        unknown = builders.mentor("7654321")
        refused(await placements.post("/mentors", json=unknown, headers=API), 422, "trn")
        garbled = builders.mentor("12345")
        refused(await placements.post("/mentors", json=garbled, headers=API), 422, "trn")
        uncopied = builders.mentor(school_urn="999999")
        refused(await placements.post("/mentors", json=uncopied, headers=API), 422, "school_urn")
        twice = await placements.post("/mentors", json=builders.mentor(), headers=API)
        refused(twice, 409, "school_urn")
        batch = [builders.mentor(school_urn="100001"), unknown]
        answer = await placements.post("/mentors/batch", json=batch, headers=API)
        assert answer.status_code == 422
        assert refusal(answer).startswith("[1] trn:")
        anonymous = await placements.post("/mentors", json=builders.mentor(), headers={})
        assert anonymous.status_code == 401

        joined = answered(
            await placements.post(
                "/mentors", json=builders.mentor(school_urn="100001"), headers=API
            ),
            201,
        )
        assert (joined["school_urns"], joined["version"]) == (["100000", "100001"], 2)
        at_second = answered(
            await placements.get("/mentors", params={"school_urn": "100001"}, headers=AUDITOR)
        )
        assert [m["trn"] for m in at_second] == ["1234567"]
        left = answered(await placements.delete("/mentors/1234567/schools/100000", headers=API))
        assert left["school_urns"] == ["100001"]
        assert (
            answered(
                await placements.get("/mentors", params={"school_urn": "100000"}, headers=AUDITOR)
            )
            == []
        )


async def test_a_batch_of_mentors_is_checked_against_dqt_whole_and_kept_only_whole(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        # more than one find's worth: DQT is asked 500 persons at a time
        people = [builders.dqt_person(f"{2000000 + n}", first_name=f"M{n}") for n in range(600)]
        answered(await line["dqt"].post("/v3/teachers/batch", json=people, headers=API), 201)
        mentors = [builders.mentor(person["trn"]) for person in people]
        placements = line["placements"]
        for index, wrong, field in (
            (550, {"date_of_birth": "1962-04-10"}, "date_of_birth"),
            (3, {"trn": "7654321"}, "trn"),
        ):
            bad = [*mentors[:index], {**mentors[index], **wrong}, *mentors[index + 1 :]]
            answer = await placements.post("/mentors/batch", json=bad, headers=API)
            assert answer.status_code == 422, answer.text
            trn = bad[index]["trn"]
            assert refusal(answer) == (
                f"[{index}] date_of_birth: is not the date of birth DQT holds for TRN {trn}"
                if field == "date_of_birth"
                else f"[{index}] trn: DQT has no teacher with TRN {trn}"
            )
            assert answered(await placements.get("/mentors", headers=AUDITOR)) == []
        added = answered(await placements.post("/mentors/batch", json=mentors, headers=API), 201)
        assert [(m["trn"], m["first_name"]) for m in added] == [
            (person["trn"], person["first_name"]) for person in people
        ]
        held = answered(await placements.get("/mentors", params={"limit": 5000}, headers=AUDITOR))
        assert len(held) == 600


async def test_mentors_take_dqt_names_at_0005_reading_300_trns_a_minute(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        people = [builders.dqt_person(f"{2000000 + n}") for n in range(1, 301)]
        answered(await line["dqt"].post("/v3/teachers/batch", json=people, headers=API), 201)
        mentors = [builders.mentor(person["trn"]) for person in people]
        mentors.append(builders.mentor())
        placements = line["placements"]
        answered(await placements.post("/mentors/batch", json=mentors, headers=API), 201)

        await line.control.advance(to=at(5, 0, 5))
        copies = answered(
            await placements.get("/copies/teacher", params={"limit": 5000}, headers=AUDITOR)
        )
        times = {copy["trn"]: copy["copied_at"] for copy in copies["copies"]}
        # TRNs are read in order, 300 in a minute: 1234567 and 2000001..2000299, then 2000300
        assert len(times) == 301
        assert times["2000300"] == "2026-10-05T00:06:00Z"
        assert {t for trn, t in times.items() if trn != "2000300"} == {"2026-10-05T00:05:00Z"}

        head = answered(await placements.get("/feed/mentor", headers=AUDITOR))["next"]
        rename_in_dqt(state_dir, "2000300", "Maggie", "Okafor")
        await line.control.advance(to=at(6, 0, 4))
        assert (
            answered(await placements.get("/mentors/2000300", headers=AUDITOR))["last_name"]
            == "Thompson"
        )
        await line.control.advance(to=at(6, 0, 5))
        renamed = answered(await placements.get("/mentors/2000300", headers=AUDITOR))
        assert (renamed["first_name"], renamed["last_name"], renamed["version"]) == (
            "Maggie",
            "Okafor",
            2,
        )
        copy = answered(await placements.get("/copies/teacher/2000300", headers=AUDITOR))
        assert (copy["first_name"], copy["copied_at"]) == ("Maggie", "2026-10-06T00:06:00Z")
        feed = answered(
            await placements.get("/feed/mentor", params={"since": head}, headers=AUDITOR)
        )
        assert [(c["key"], c["version"]) for c in feed["changes"]] == [("2000300", 2)]
        assert feed["changes"][0]["record"]["first_name"] == "Maggie"


async def test_placements_name_schools_providers_and_mentors_placements_holds(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"), builders.school("100001"))
        placements = line["placements"]
        answered(await placements.post("/mentors", json=builders.mentor(), headers=API), 201)

        mentored = builders.placement(mentor_trns=["1234567"])
        offered = answered(await placements.post("/placements", json=mentored, headers=API), 201)
        assert (offered["provider_code"], offered["academic_year"]) == (None, 2026)
        assert offered["mentor_trns"] == ["1234567"]
        for field, value in (
            ("provider_code", "1UR"),
            ("year_group", "year_7"),
            ("academic_year", 2028),
            ("subject_code", "maths"),
            ("terms", ["winter"]),
        ):
            body = {**builders.placement(), field: value}
            refused(await placements.post("/placements", json=body, headers=API), 422, field)
        elsewhere = builders.placement("100001", mentor_trns=["1234567"])
        refused(
            await placements.post("/placements", json=elsewhere, headers=API), 422, "mentor_trns"
        )
        batch = [builders.placement(academic_year=2027), builders.placement(provider_code="1UR")]
        answer = await placements.post("/placements/batch", json=batch, headers=API)
        assert answer.status_code == 422
        assert refusal(answer).startswith("[1] provider_code:")

        path = f"/placements/{offered['id']}"
        taken = answered(await placements.patch(path, json={"provider_code": "2FR"}, headers=API))
        assert (taken["provider_code"], taken["version"]) == ("2FR", 2)
        refused(
            await placements.patch(path, json={"provider_code": "1UR"}, headers=API),
            422,
            "provider_code",
        )
        by_provider = answered(await placements.get("/placements", params={"provider_code": "2FR"}))
        assert [p["id"] for p in by_provider] == [offered["id"]]
        busy = await placements.delete("/mentors/1234567/schools/100000", headers=API)
        refused(busy, 409, "trn")
        assert (await placements.delete(path, headers=API)).status_code == 204
        assert (await placements.get(path)).status_code == 404


async def test_school_partnerships_are_one_per_school_and_provider(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        placements = line["placements"]
        pair = {"school_urn": "100000", "provider_code": "2FR"}
        made = answered(await placements.post("/partnerships", json=pair, headers=API), 201)
        assert made["version"] == 1
        assert (await placements.post("/partnerships", json=pair, headers=API)).status_code == 409
        # a provider new to Publish is unknown to Placements until the 00:15 sync
        leeds = builders.provider("1UR", name="Leeds Trinity", accredited_body=False)
        answered(await line["publish"].post("/providers", json=leeds, headers=API), 201)
        new_provider = {"school_urn": "100000", "provider_code": "1UR"}
        refused(
            await placements.post("/partnerships", json=new_provider, headers=API),
            422,
            "provider_code",
        )
        await line.control.advance(to=at(5, 0, 15))
        second = answered(
            await placements.post("/partnerships", json=new_provider, headers=API), 201
        )
        unknown_school = {"school_urn": "999999", "provider_code": "2FR"}
        refused(
            await placements.post("/partnerships", json=unknown_school, headers=API),
            422,
            "school_urn",
        )
        listed = answered(await placements.get("/partnerships", params={"provider_code": "2FR"}))
        assert [p["id"] for p in listed] == [made["id"]]
        feed = answered(await placements.get("/feed/school_partnership"))
        assert [c["key"] for c in feed["changes"]] == [made["id"], second["id"]]


async def test_a_schools_appetite_stays_in_placements_through_the_import(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        await copied(line, builders.school("100000"))
        placements = line["placements"]
        eager = {"appetite": "actively_looking"}
        answered(await placements.patch("/schools/100000", json=eager, headers=API))
        refused(
            await placements.patch("/schools/100000", json={"appetite": "keen"}, headers=API),
            422,
            "appetite",
        )
        refused(
            await placements.patch(
                "/schools/100000", json={"placements_service": None}, headers=API
            ),
            422,
            "placements_service",
        )
        copy_write = await placements.patch("/copies/school/100000", json=eager, headers=API)
        assert copy_write.status_code == 403

        renamed = {"name": "Aldgate Primary School"}
        answered(await line["gias"].patch("/schools/100000", json=renamed, headers=API))
        await line.control.advance(to=at(6, 23, 30))
        school = answered(await placements.get("/schools/100000"))
        assert (school["name"], school["appetite"]) == (
            "Aldgate Primary School",
            "actively_looking",
        )
        assert school["copied_at"] == "2026-10-06T23:30:00Z"
