"""The HESA stub: student record systems submit ITT records; Register reads the census XML."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from lines.becoming_a_teacher.readers import HesaCollectionReader
from lines.becoming_a_teacher.topology import LINE
from serviceline.consumer.readers import ReadContext, reader_for
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.settings import CLOCK_START, ClockMode
from serviceline.testing import API, AUDITOR, LineUnderTest, headers_of, in_process_line, reference
from tests import builders

pytestmark = pytest.mark.anyio

SAMPLE = reference("data", "hesa-itt-record-sample.xml")
STUDENTS = "/apis/itt/1.1/students"
CENSUS = "/apis/itt/1.1/CensusData"
SITS = headers_of("sits", "hesa")
REGISTER = headers_of("register", "hesa")
TO_REGISTER = LINE.edge("hesa.itt_record.register")


def ok(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def field_named(response: httpx.Response, field: str) -> bool:
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail.startswith(f"{field}:")
    return any(field in error["loc"] for error in detail)


def leaves(student: ElementTree.Element) -> dict[str, str | None]:
    return {child.tag: child.text for child in student if len(child) == 0}


def sample_student() -> ElementTree.Element:
    student = ElementTree.parse(SAMPLE).getroot().find("Student")
    assert student is not None
    return student


async def census(line: LineUnderTest, from_date: str) -> list[ElementTree.Element]:
    response = await line["hesa"].get(f"{CENSUS}/C26053/{from_date}", headers=REGISTER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "ITTRecord"
    assert all(child.tag == "Student" for child in root)
    return list(root)


async def husids(line: LineUnderTest, from_date: str) -> list[str | None]:
    return [leaves(student)["F_HUSID"] for student in await census(line, from_date)]


async def submit(line: LineUnderTest, student: dict[str, Any], code: int = 201) -> Any:
    return ok(await line["hesa"].post(STUDENTS, json=student, headers=SITS), code)


async def test_a_submitted_record_is_in_the_census_as_hesa_writes_it(state_dir: Path) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        submitted = await submit(line, builders.itt_student())
        assert submitted == {
            **builders.itt_student(),
            "F_RECID": "26053",
            "F_COMMIT_TIMESTAMP": "2026-10-05 00:00:00",
        }
        assert ok(await line["hesa"].get(f"{STUDENTS}/0310261553101", headers=API)) == submitted

        (student,) = await census(line, "2026-10-05")
        fields = leaves(student)
        assert fields["F_HUSID"] == "0310261553101"
        assert (fields["F_FNAMES"], fields["F_SURNAME"]) == ("Dave", "George")
        assert (fields["F_BIRTHDTE"], fields["F_ITTSTARTDATE"]) == ("1978-08-13", "2026-09-01")
        assert (fields["F_TRN"], fields["F_NIN"], fields["F_SBJCA2"]) == ("NULL", "NULL", "NULL")
        assert (fields["F_RECID"], fields["F_COMMIT_TIMESTAMP"]) == ("26053", "2026-10-05 00:00:00")
        placements = student.findall("PLACEMENTS/PLACEMENT")
        assert [leaves(placement) for placement in placements] == [
            {"F_PLMNTSCH": "100000", "F_PLMNTDYS": "60"}
        ]
        real_tags = {element.tag for element in sample_student().iter()}
        assert {element.tag for element in student.iter()} <= real_tags | set(TO_REGISTER.mapping)
        assert set(TO_REGISTER.mapping) <= set(fields)


async def test_the_real_sample_goes_in_and_comes_back_out(state_dir: Path) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        sample = sample_student()
        sent: dict[str, Any] = {
            tag: None if value == "NULL" else value for tag, value in leaves(sample).items()
        }
        sent["PLACEMENTS"] = [leaves(p) for p in sample.findall("PLACEMENTS/PLACEMENT")]
        await submit(line, sent)
        (student,) = await census(line, "2026-10-01")
        served, real = leaves(student), leaves(sample)
        assert set(served) - set(real) == {"F_TRN"}  # Register read it; the sample has none
        kept = set(served) - {"F_TRN", "F_RECID", "F_COMMIT_TIMESTAMP"}
        assert {tag: served[tag] for tag in kept} == {tag: real[tag] for tag in kept}
        assert [leaves(p) for p in student.findall("PLACEMENTS/PLACEMENT")] == sent["PLACEMENTS"]


async def test_the_census_holds_what_changed_on_or_after_its_date(state_dir: Path) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        first = builders.itt_student("1000000000001")
        await submit(line, first)
        await line.control.advance(by="2d")
        await submit(line, builders.itt_student("1000000000002"))

        assert await husids(line, "2026-10-05") == ["1000000000001", "1000000000002"]
        assert await husids(line, "2026-10-07") == ["1000000000002"]
        assert await husids(line, "2026-10-08") == []

        # the same record again changes nothing; a change to it is news
        await submit(line, first, 200)
        assert await husids(line, "2026-10-07") == ["1000000000002"]
        moved = await submit(line, {**first, "F_SURNAME": "Georgiou"}, 200)
        assert moved["F_COMMIT_TIMESTAMP"] == "2026-10-07 00:00:00"
        assert await husids(line, "2026-10-07") == ["1000000000001", "1000000000002"]
        records = ok(await line["hesa"].get("/records/itt_record", headers=AUDITOR))["records"]
        versions = {record["husid"]: record["version"] for record in records}
        assert versions == {"1000000000001": 2, "1000000000002": 1}
        assert (
            ok(await line["hesa"].get(f"{STUDENTS}/1000000000001", headers=API))["F_SURNAME"]
            == "Georgiou"
        )


async def test_only_this_cycles_collection_is_served(state_dir: Path) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        await submit(line, builders.itt_student())
        for collection in ("C25053", "C26054", "census"):
            missing = await line["hesa"].get(f"{CENSUS}/{collection}/2026-10-05", headers=REGISTER)
            assert missing.status_code == 404, collection
            assert field_named(missing, "collection")
            assert "C26053" in missing.text
        for day in ("2026-13-01", "05-10-2026", "yesterday"):
            refused = await line["hesa"].get(f"{CENSUS}/C26053/{day}", headers=REGISTER)
            assert refused.status_code == 422, day
            assert field_named(refused, "from_date")
        unknown = await line["hesa"].get(f"{STUDENTS}/9999999999999", headers=API)
        assert unknown.status_code == 404
        assert field_named(unknown, "husid")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"F_HUSID": "031026155310"}, "F_HUSID"),
        ({"F_HUSID": "03102615531O1"}, "F_HUSID"),
        ({"F_UKPRN": "1000771"}, "F_UKPRN"),
        ({"F_BIRTHDTE": "13/08/1978"}, "F_BIRTHDTE"),
        ({"F_ITTSTARTDATE": "2026-02-30"}, "F_ITTSTARTDATE"),
        ({"F_EXPECTEDENDDATE": "July 2027"}, "F_EXPECTEDENDDATE"),
        ({"F_SEXID": "1"}, "F_SEXID"),
        ({"F_TRN": "12345"}, "F_TRN"),
        ({"F_ITTAIM": "203"}, "F_ITTAIM"),
        ({"F_SBJCA1": "W1"}, "F_SBJCA1"),
        ({"F_SURNAME": " "}, "F_SURNAME"),
        ({"PLACEMENTS": [{"F_PLMNTSCH": "10000"}]}, "F_PLMNTSCH"),
    ],
)
async def test_a_malformed_record_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        refused = await line["hesa"].post(
            STUDENTS, json=builders.itt_student(**change), headers=SITS
        )
        assert refused.status_code == 422
        assert field_named(refused, field), refused.text
        assert await census(line, "2026-10-01") == []


async def test_batches_create_and_replace_and_writes_need_a_token(state_dir: Path) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        hesa = line["hesa"]
        await submit(line, builders.itt_student("1000000000001"))
        batch = [
            builders.itt_student("1000000000001", F_TRN="1234567"),
            builders.itt_student("1000000000002"),
        ]
        answer = ok(await hesa.post(f"{STUDENTS}/batch", json=batch, headers=API), 201)
        assert answer == {"created": 1, "updated": 1}
        assert ok(await hesa.get(f"{STUDENTS}/1000000000001", headers=API))["F_TRN"] == "1234567"

        other = builders.itt_student("1000000000003")
        assert (await hesa.post(STUDENTS, json=other)).status_code == 401
        guessed = {"Authorization": "Bearer guessed"}
        assert (await hesa.post(STUDENTS, json=other, headers=guessed)).status_code == 403
        assert (await hesa.post(f"{STUDENTS}/batch", json=[other])).status_code == 401
        assert await husids(line, "2026-10-01") == ["1000000000001", "1000000000002"]


async def test_register_copies_the_census_through_its_reader(state_dir: Path) -> None:
    async with in_process_line(["hesa"], state_dir) as line:
        await submit(line, builders.itt_student("1000000000001"))
        await line.control.advance(by="1d")
        await submit(line, builders.itt_student("1000000000002", F_TRN="1234567"))
        async with line.upstream("register", "hesa") as upstream:
            clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)
            context = ReadContext(
                edge=TO_REGISTER,
                upstream=upstream,
                key_field="F_HUSID",
                clock=clock,
                year=2027,
                page_size=1,
            )
            reader = reader_for(context)
            assert isinstance(reader, HesaCollectionReader)

            everything = [page async for page in reader.pages(None)]
            assert [[record.key for record in page.records] for page in everything] == [
                ["1000000000001"],
                ["1000000000002"],
                [],
            ]
            copied = TO_REGISTER.translate(everything[1].records[0].fields)
            assert copied == {
                "hesa_id": "1000000000002",
                "first_names": "Dave",
                "last_name": "George",
                "date_of_birth": "1978-08-13",
                "email": "dave.george@example.com",
                "ukprn": "10007713",
                "provider_trainee_id": "99157234/2/01",
                "trn": "1234567",
                "itt_aim": "202",
                "study_mode": "01",
                "itt_start_date": "2026-09-01",
                "course_subject_one": "100346",
                "status": "NEW",
            }
            assert TO_REGISTER.translate(everything[0].records[0].fields)["trn"] is None

            since = await line.control.now()
            changed = [page async for page in reader.pages(since)]
            assert [record.key for page in changed for record in page.records] == ["1000000000002"]
