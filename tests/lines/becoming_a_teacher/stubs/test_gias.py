"""The GIAS stub: yesterday's edubasealldata CSV as the real one looks, and its JSON API."""

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from serviceline.testing import ADMIN, API, in_process_line, names_field, reference
from tests import builders

pytestmark = pytest.mark.anyio

REAL_SAMPLE = reference("data", "gias-edubase-sample-publish-test-schools.csv")
DOWNLOADS = "/edubase/downloads/public"
# a curly apostrophe is in windows-1252 but not in ISO-8859-1 or ASCII
CAFE = "St Mary\N{RIGHT SINGLE QUOTATION MARK}s Café School"


def real_columns() -> list[str]:
    with REAL_SAMPLE.open(encoding="windows-1252", newline="") as sample:
        return next(csv.reader(sample))


async def test_the_daily_file_is_yesterdays_edubase_csv(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        cafe = builders.school("100001", name=CAFE, open_date="2001-09-01", telephone=None)
        closed = builders.school(
            "100002", status_code="2", open_date="1990-01-15", close_date="2026-08-31"
        )
        assert (await gias.post("/schools/batch", json=[cafe, closed], headers=API)).is_success

        # 00:00 on 5 October: the file for the 4th is not published until the next midnight
        early = await gias.get(f"{DOWNLOADS}/edubasealldata20261004.csv")
        assert early.status_code == 404
        assert "20261004" in early.json()["detail"]
        await gias.post("/admin/clock/advance", json={"by": "1d"}, headers=ADMIN)
        assert (await gias.get(f"{DOWNLOADS}/edubasealldata20261006.csv")).status_code == 404

        download = await gias.get(f"{DOWNLOADS}/edubasealldata20261005.csv")
        assert download.status_code == 200
        assert download.headers["content-type"] == "text/csv; charset=windows-1252"
        raw = download.content
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        assert raw.count(b"\r\n") == 3
        rows = list(csv.DictReader(io.StringIO(raw.decode("windows-1252"), newline="")))
        assert set(rows[0]) <= set(real_columns())
        assert {"URN", "EstablishmentName", "OpenDate", "GOR (code)"} <= set(rows[0])

        open_school, closed_school = rows
        assert open_school["URN"] == "100001"
        assert open_school["EstablishmentName"] == CAFE
        assert open_school["EstablishmentStatus (code)"] == "1"
        assert open_school["EstablishmentStatus (name)"] == "Open"
        assert open_school["TypeOfEstablishment (name)"] == "Voluntary aided school"
        assert open_school["PhaseOfEducation (name)"] == "Primary"
        assert open_school["OpenDate"] == "01-09-2001"
        assert open_school["CloseDate"] == ""
        assert open_school["LastChangedDate"] == "05-10-2026"
        assert open_school["TelephoneNum"] == ""
        assert (open_school["GOR (code)"], open_school["GOR (name)"]) == ("H", "London")
        assert (open_school["StatutoryLowAge"], open_school["StatutoryHighAge"]) == ("3", "11")
        assert closed_school["EstablishmentStatus (name)"] == "Closed"
        assert closed_school["CloseDate"] == "31-08-2026"


async def test_a_day_that_is_not_a_date_is_refused(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        not_a_day = await gias.get(f"{DOWNLOADS}/edubasealldata20261340.csv")
        assert not_a_day.status_code == 404
        assert names_field(not_a_day, "day")
        short = await gias.get(f"{DOWNLOADS}/edubasealldata2026104.csv")
        assert short.status_code == 422
        assert names_field(short, "day")


async def test_a_week_of_files_is_kept(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        await gias.post("/admin/clock/advance", json={"by": "8d"}, headers=ADMIN)
        kept = [
            day
            for day in range(1, 14)
            if (await gias.get(f"{DOWNLOADS}/edubasealldata202610{day:02d}.csv")).is_success
        ]
        assert kept == [5, 6, 7, 8, 9, 10, 11, 12]
        await gias.post("/admin/clock/advance", json={"by": "1d"}, headers=ADMIN)
        assert (await gias.get(f"{DOWNLOADS}/edubasealldata20261005.csv")).status_code == 404
        assert (await gias.get(f"{DOWNLOADS}/edubasealldata20261013.csv")).is_success


async def test_the_json_api_lists_and_reads_schools(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        batch = [
            builders.school("100003"),
            builders.school("100001", status_code="2"),
            builders.school("100002", status_code="3"),
        ]
        assert (await gias.post("/schools/batch", json=batch, headers=API)).json() == {"created": 3}

        listed = (await gias.get("/schools")).json()
        assert [school["urn"] for school in listed] == ["100001", "100002", "100003"]
        closed = (await gias.get("/schools", params={"status_code": "2"})).json()
        assert [school["urn"] for school in closed] == ["100001"]
        paged = (await gias.get("/schools", params={"after": "100001", "limit": 1})).json()
        assert [school["urn"] for school in paged] == ["100002"]

        school = (await gias.get("/schools/100003")).json()
        assert school == {
            **builders.school("100003"),
            "open_date": None,
            "close_date": None,
            "telephone": None,
            "website": None,
            "version": 1,
            "updated_at": "2026-10-05T00:00:00Z",
        }
        missing = await gias.get("/schools/999999")
        assert missing.status_code == 404
        assert names_field(missing, "urn")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"urn": "12345"}, "urn"),
        ({"urn": "1000000"}, "urn"),
        ({"status_code": "9"}, "status_code"),
        ({"type_code": "abc"}, "type_code"),
        ({"phase_code": "8"}, "phase_code"),
        ({"ukprn": "1007931"}, "ukprn"),
        ({"la_code": "20"}, "la_code"),
        ({"region_code": "X"}, "region_code"),
        ({"minimum_age": 120}, "minimum_age"),
        ({"name": "  "}, "name"),
        ({"open_date": "01-09-2001"}, "open_date"),
    ],
)
async def test_a_bad_school_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        refused = await gias.post("/schools", json=builders.school(**change), headers=API)
        assert refused.status_code == 422
        assert names_field(refused, field)
        assert (await gias.get("/schools")).json() == []


async def test_updates_and_queries_are_checked_and_writes_need_the_token(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        assert (await gias.post("/schools", json=builders.school(), headers=API)).is_success
        refusals = [
            await gias.patch("/schools/100000", json={"status_code": "7"}, headers=API),
            await gias.patch("/schools/100000", json={"ukprn": "x"}, headers=API),
            await gias.get("/schools", params={"status_code": "9"}),
            await gias.get("/schools", params={"limit": 0}),
        ]
        fields = ["status_code", "ukprn", "status_code", "limit"]
        assert [r.status_code for r in refusals] == [422] * 4
        assert [names_field(r, f) for r, f in zip(refusals, fields, strict=True)] == [True] * 4
        assert (await gias.get("/schools/100000")).json()["version"] == 1

        assert (await gias.post("/schools", json=builders.school("100001"))).status_code == 401
        patched = await gias.patch(
            "/schools/100000", json={"name": "X"}, headers={"Authorization": "Bearer guess"}
        )
        assert patched.status_code == 403
        assert (await gias.get("/schools/100000")).json()["name"] == "The Aldgate School"
