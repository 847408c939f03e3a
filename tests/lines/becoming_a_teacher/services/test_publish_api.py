"""Publish's public API v1 answers as the real spec says, and its write API refuses bad data."""

import copy
import json
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.publish.models import Course, Provider
from serviceline.runtime.db import make_engine
from serviceline.testing import (
    ADMIN,
    API,
    LineUnderTest,
    database_url,
    in_process_line,
    names_field,
    reference,
)
from tests import builders

pytestmark = pytest.mark.anyio

SPEC: dict[str, Any] = json.loads(reference("specs", "publish-public-v1.json").read_text())
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
V1 = "/api/public/v1"
CYCLE = f"{V1}/recruitment_cycles/2027"


def spec_errors(body: Any, schema: str) -> list[str]:
    """What in `body` breaks the spec's `schema`, with $refs resolved inside the spec."""
    validator = OAS30Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": SPEC["components"]},
        format_checker=oas30_format_checker,
    )
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(body)
    ]


async def created(response: Awaitable[httpx.Response]) -> dict[str, Any]:
    answer = await response
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


LEAD_SCHOOL = builders.provider(
    "1TZ",
    name="Aldgate Teaching School",
    provider_type="lead_school",
    accredited_body=False,
    ukprn="10079319",
    urn="100000",
    email="itt@aldgate.example",
    telephone="020 7283 1147",
    website="https://aldgate.example",
    street_address_1="St James's Passage",
    postcode="EC3A 5DE",
)
SALARIED = builders.course(
    "2ABC",
    name="Primary",
    accredited_provider_code="2FR",
    program_type="school_direct_salaried_training_programme",
    funding_type="salary",
    qualifications=["qts"],
    study_mode="full_time",
    level="primary",
    subject_codes=["00"],
    age_minimum=3,
    age_maximum=11,
    start_date=None,
    site_codes=["-", "B"],
)


@pytest.fixture
async def line(state_dir: Path) -> AsyncIterator[LineUnderTest]:
    async with in_process_line(["publish"], state_dir) as running:
        publish = running["publish"]
        await created(publish.post("/providers", json=builders.provider(), headers=API))
        await created(publish.post("/providers", json=LEAD_SCHOOL, headers=API))
        await created(publish.post("/providers/2FR/sites", json=builders.site(), headers=API))
        sites = [builders.site("-", name="Main Site"), builders.site("B", street_address_1=None)]
        await created(publish.post("/providers/1TZ/sites/batch", json=sites, headers=API))
        await created(publish.post("/providers/2FR/courses", json=builders.course(), headers=API))
        await created(publish.post("/providers/1TZ/courses", json=SALARIED, headers=API))
        yield running


RESPONSES = [
    (f"{CYCLE}/providers", "ProviderListResponse"),
    (f"{V1}/recruitment_cycles/current/providers/1TZ", "ProviderSingleResponse"),
    (f"{CYCLE}/providers/2FR", "ProviderSingleResponse"),
    (f"{CYCLE}/courses", "CourseListResponse"),
    (f"{CYCLE}/providers/1TZ/courses", "CourseListResponse"),
    (f"{CYCLE}/providers/1TZ/courses/2ABC", "CourseSingleResponse"),
    (f"{CYCLE}/providers/2FR/courses/3GTY", "CourseSingleResponse"),
    (f"{CYCLE}/providers/1TZ/locations", "ProviderLocationListResponse"),
    (f"{CYCLE}/providers/1TZ/courses/2ABC/locations", "CourseLocationListResponse"),
    (f"{V1}/subjects", "SubjectListResponse"),
]


async def test_every_read_answers_as_the_spec_says(line: LineUnderTest) -> None:
    problems: dict[str, list[str]] = {}
    for path, schema in RESPONSES:
        response = await line["publish"].get(path)  # the public API needs no token
        assert response.status_code == 200, f"{path}: {response.text}"
        body = response.json()
        assert body["data"], f"{path} returned no data"
        if errors := spec_errors(body, schema):
            problems[path] = errors
    assert problems == {}


async def test_the_spec_check_can_fail(line: LineUnderTest) -> None:
    body = (await line["publish"].get(f"{CYCLE}/providers/1TZ/courses/2ABC")).json()
    assert spec_errors(body, "CourseSingleResponse") == []
    apply_shaped = copy.deepcopy(body)
    apply_shaped["data"]["attributes"]["study_mode"] = "full_time_or_part_time"
    assert spec_errors(apply_shaped, "CourseSingleResponse") == [
        "data/attributes/study_mode: 'full_time_or_part_time' is not one of "
        "['both', 'full_time', 'part_time']"
    ]
    assert spec_errors({"data": [], "jsonapi": {}}, "ProviderListResponse") != []


async def test_attributes_carry_the_real_names(line: LineUnderTest) -> None:
    publish = line["publish"]
    provider = (await publish.get(f"{CYCLE}/providers/1TZ")).json()["data"]
    assert set(provider["attributes"]) <= set(SCHEMAS["ProviderAttributes"]["properties"])
    assert (provider["id"], provider["type"]) == ("1TZ", "providers")
    assert provider["attributes"]["urn"] == "100000"
    assert provider["attributes"]["changed_at"] == "2026-10-05T00:00:00Z"

    course = (await publish.get(f"{CYCLE}/providers/1TZ/courses/2ABC")).json()["data"]
    attributes = course["attributes"]
    assert (course["type"], course["id"]) == ("courses", attributes["uuid"])
    assert attributes["accredited_provider_code"] == "2FR"
    assert (attributes["state"], attributes["application_status"]) == ("published", "open")
    assert "start_date" not in attributes  # unknown, and the spec does not allow null

    subjects = (await publish.get(f"{V1}/subjects")).json()["data"]
    allowed = set(SCHEMAS["SubjectAttributes"]["properties"])
    assert all(set(subject["attributes"]) <= allowed for subject in subjects)
    assert {"code": "G1", "name": "Mathematics"} in [s["attributes"] for s in subjects]

    locations = (await publish.get(f"{CYCLE}/providers/1TZ/courses/2ABC/locations")).json()
    assert sorted(site["attributes"]["code"] for site in locations["data"]) == ["-", "B"]
    # an unknown recruitment year falls back to the current cycle, as the spec says
    for year in ("2026", "current", "nonsense"):
        assert await codes(publish, f"{V1}/recruitment_cycles/{year}/providers") == ["1TZ", "2FR"]


async def codes(publish: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    response = await publish.get(path, params=params)
    assert response.status_code == 200, response.text
    return [resource["attributes"]["code"] for resource in response.json()["data"]]


async def test_filter_updated_since_returns_what_changed_after(line: LineUnderTest) -> None:
    publish = line["publish"]
    providers = f"{CYCLE}/providers"
    since = "filter[updated_since]"
    assert await codes(publish, providers, **{since: "2026-10-04T23:59:59Z"}) == ["1TZ", "2FR"]
    assert await codes(publish, providers, **{since: "2026-10-05T00:00:00Z"}) == []

    await publish.post("/admin/clock/advance", json={"by": "1h"}, headers=ADMIN)
    await publish.patch("/providers/1TZ", json={"name": "Aldgate SCITT"}, headers=API)
    moments = (
        "2026-10-05T00:00:00Z",
        "2026-10-05T00:00:00",
        "2026-10-05T01:00:00+01:00",
        "2026-10-05 00:00:00 UTC",  # Ruby's Time#to_s, as json_api_client sends a Time
        "2026-10-05 01:00:00 +0100",
    )
    for moment in moments:
        assert await codes(publish, providers, **{since: moment}) == ["1TZ"], moment
    refused = await publish.get(providers, params={since: "yesterday"})
    assert refused.status_code == 400
    assert names_field(refused, since)

    # a provider's changed_at moves when its sites or courses change, as in the real Publish
    await publish.post("/admin/clock/advance", json={"by": "1h"}, headers=ADMIN)
    await created(publish.post("/providers/2FR/sites", json=builders.site("C"), headers=API))
    await created(publish.post("/providers/2FR/courses", json=builders.course("X100"), headers=API))
    assert await codes(publish, providers, **{since: "2026-10-05T01:00:00Z"}) == ["2FR"]
    assert await codes(publish, f"{CYCLE}/courses", **{since: "2026-10-05T01:00:00Z"}) == ["X100"]
    later = {since: "2026-10-05T02:00:00Z"}
    assert await codes(publish, f"{CYCLE}/providers/2FR/courses", **later) == []


async def test_pages_hold_up_to_500_and_links_next_walks_them(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        batch = [builders.provider(f"{n:03d}", name=f"Provider {n}") for n in range(501)]
        await created(publish.post("/providers/batch", json=batch, headers=API))
        providers = f"{CYCLE}/providers"

        first = (await publish.get(providers, params={"page[per_page]": 500})).json()
        assert len(first["data"]) == 500
        second = (await publish.get(first["links"]["next"])).json()
        assert len(second["data"]) == 1
        assert "links" not in second
        walked = [p["attributes"]["code"] for p in first["data"] + second["data"]]
        assert sorted(walked) == [f"{n:03d}" for n in range(501)]
        assert len((await publish.get(providers)).json()["data"]) == 100

        # past 500 falls back to 500, as the spec says; past the last page is refused
        assert (
            len((await publish.get(providers, params={"page[per_page]": 501})).json()["data"])
            == 500
        )
        refused = await publish.get(providers, params={"page[per_page]": "0"})
        assert refused.status_code == 400
        assert names_field(refused, "page[per_page]")
        past = await publish.get(providers, params={"page[per_page]": 500, "page[page]": 3})
        assert past.status_code == 400
        assert names_field(past, "page[page]")
        assert spec_errors(past.json(), "400ErrorResponse") == []


async def test_many_providers_sites_and_courses_go_in_one_batch_or_not_at_all(
    line: LineUnderTest,
) -> None:
    publish = line["publish"]
    sites = [
        {**builders.site("C"), "provider_code": "2FR"},
        {**builders.site("C", name="Other Site"), "provider_code": "1TZ"},
    ]
    assert await created(publish.post("/sites/batch", json=sites, headers=API)) == {"created": 2}
    courses = [
        {**builders.course("A100", site_codes=["A", "C"]), "provider_code": "2FR"},
        {**builders.course("B200", site_codes=["B", "C"]), "provider_code": "1TZ"},
    ]
    assert await created(publish.post("/courses/batch", json=courses, headers=API)) == {
        "created": 2
    }
    both = (await publish.get(f"{CYCLE}/courses", params={"page[per_page]": 10})).json()["data"]
    assert {course["attributes"]["code"] for course in both} >= {"A100", "B200"}

    # a site of the wrong provider, an unknown provider: refused by index, nothing stored
    wrong_site = [
        {**builders.course("A101"), "provider_code": "2FR"},
        {**builders.course("B201", site_codes=["A"]), "provider_code": "1TZ"},
    ]
    refused = await publish.post("/courses/batch", json=wrong_site, headers=API)
    assert refused.status_code == 422
    assert [problem["loc"] for problem in refused.json()["detail"]] == [["body", 1, "site_codes"]]
    unknown = [
        {**builders.site("D"), "provider_code": "2FR"},
        {**builders.site("D"), "provider_code": "9ZZ"},
    ]
    refused = await publish.post("/sites/batch", json=unknown, headers=API)
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "loc": ["body", 1, "provider_code"],
            "msg": "Publish has no provider '9ZZ'",
            "type": "value_error",
        }
    ]
    after = (await publish.get(f"{CYCLE}/courses", params={"page[per_page]": 10})).json()["data"]
    assert "A101" not in {course["attributes"]["code"] for course in after}
    locations = await publish.get(f"{CYCLE}/providers/2FR/locations")
    assert "D" not in {site["attributes"]["code"] for site in locations.json()["data"]}


async def test_links_next_keeps_the_filter_and_page_size(line: LineUnderTest) -> None:
    publish = line["publish"]
    await publish.post("/admin/clock/advance", json={"by": "1h"}, headers=ADMIN)
    batch = [builders.course(f"C{n:03d}") for n in range(5)]
    await created(publish.post("/providers/2FR/courses/batch", json=batch, headers=API))

    url: str | None = f"{CYCLE}/courses"
    params: dict[str, str] | None = {
        "page[per_page]": "2",
        "filter[updated_since]": "2026-10-05T00:30:00Z",
    }
    pages: list[list[str]] = []
    while url is not None:
        body = (await publish.get(url, params=params)).json()
        assert spec_errors(body, "CourseListResponse") == []
        pages.append([course["attributes"]["code"] for course in body["data"]])
        url = body.get("links", {}).get("next")
        if url is not None:
            assert url.startswith(f"http://publish{CYCLE}/courses?")  # followed as it stands
            query = httpx.URL(url).params
            assert query["page[per_page]"] == "2"
            assert query["filter[updated_since]"] == "2026-10-05T00:30:00Z"
        params = None
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(code for page in pages for code in page) == [f"C{n:03d}" for n in range(5)]


def offset_codes(
    state_dir: Path, model: type[Provider] | type[Course], page: int, per_page: int, *where: Any
) -> list[str]:
    """The page as `ORDER BY updated_at, key OFFSET … LIMIT …` finds it in Publish's database."""
    engine = make_engine(database_url(state_dir, "publish"))
    try:
        with Session(engine) as session:
            key = col(getattr(model, model.key_field))
            found = session.exec(
                select(col(model.code))
                .where(*where)
                .order_by(col(model.updated_at), key)
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
            return list(found)
    finally:
        engine.dispose()


async def test_page_n_holds_what_offset_gives_even_as_an_edit_moves_a_row(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        for n in range(7):
            provider = builders.provider(f"{n}AA", name=f"Provider {n}")
            await created(publish.post("/providers", json=provider, headers=API))
            site = builders.site()
            await created(publish.post(f"/providers/{n}AA/sites", json=site, headers=API))
            await publish.post("/admin/clock/advance", json={"by": "1m"}, headers=ADMIN)
        courses = [builders.course(f"C{n:03d}") for n in range(5)]
        written = await publish.post("/providers/3AA/courses/batch", json=courses, headers=API)
        assert written.status_code == 201, written.text

        async def page(path: str, number: int, per_page: int, **params: str) -> list[str]:
            params = {**params, "page[page]": str(number), "page[per_page]": str(per_page)}
            return await codes(publish, f"{CYCLE}/{path}", **params)

        assert await page("providers", 1, 3) == ["0AA", "1AA", "2AA"]
        # 0AA is edited between the pages: it moves to the end, 3AA (its courses changed it at
        # 00:07) stays last but one, and 4AA slides back onto the page already read
        await publish.post("/admin/clock/advance", json={"by": "1m"}, headers=ADMIN)
        await publish.patch("/providers/0AA", json={"name": "Renamed"}, headers=API)
        assert await page("providers", 2, 3) == ["5AA", "6AA", "3AA"]
        assert await page("providers", 3, 3) == ["0AA"]
        for number in (1, 2, 3):
            expected = offset_codes(state_dir, Provider, number, 3)
            assert await page("providers", number, 3) == expected, number
        since = {"filter[updated_since]": "2026-10-05T00:03:00Z"}
        after = col(Provider.updated_at) > datetime(2026, 10, 5, 0, 3, tzinfo=UTC)
        for number in (1, 2):
            expected = offset_codes(state_dir, Provider, number, 2, after)
            assert await page("providers", number, 2, **since) == expected

        # a provider's courses, paged within the provider
        uuid = next(c["uuid"] for c in written.json() if c["code"] == "C001")
        edited = await publish.patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
        assert edited.status_code == 200, edited.text
        of_3aa = col(Course.provider_code) == "3AA"
        walked = [await page("providers/3AA/courses", number, 2) for number in (1, 2, 3)]
        assert walked == [offset_codes(state_dir, Course, n, 2, of_3aa) for n in (1, 2, 3)]
        # the same time orders the rest by uuid; the one edited last comes last
        assert walked[2] == ["C001"]
        assert sorted(walked[0] + walked[1]) == ["C000", "C002", "C003", "C004"]


async def test_the_write_api_refuses_bad_data_naming_the_field(line: LineUnderTest) -> None:
    publish = line["publish"]
    course = (await publish.get(f"{CYCLE}/providers/2FR/courses/3GTY")).json()["data"]
    uuid = course["id"]
    head = (await publish.get("/feed/course")).json()["next"]
    refusals: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "/providers", builders.provider("2F"), 422, "code"),
        ("POST", "/providers", builders.provider("2fr"), 422, "code"),
        ("POST", "/providers", builders.provider("9ZZ", ukprn="1234"), 422, "ukprn"),
        ("POST", "/providers/2FR/courses", builders.course("3GT"), 422, "code"),
        (
            "POST",
            "/providers/2FR/courses",
            builders.course("N001", accredited_provider_code="1TZ"),
            422,
            "accredited_provider_code",
        ),
        (
            "POST",
            "/providers/2FR/courses",
            builders.course("N002", accredited_provider_code="ZZZ"),
            422,
            "accredited_provider_code",
        ),
        (
            "POST",
            "/providers/2FR/courses",
            builders.course("N003", accredited_provider_code="2f"),
            422,
            "accredited_provider_code",
        ),
        (
            "POST",
            "/providers/2FR/courses",
            builders.course("N004", site_codes=["Z"]),
            422,
            "site_codes",
        ),
        (
            "POST",
            "/providers/2FR/courses",
            builders.course("N005", age_minimum=16, age_maximum=11),
            422,
            "age_minimum",
        ),
        (
            "POST",
            "/providers/2FR/courses",
            builders.course("N006", qualifications=["pgce", "pgde"]),
            422,
            "qualifications",
        ),
        ("POST", "/providers/ZZZ/courses", builders.course("N007"), 404, "provider_code"),
        ("PATCH", f"/courses/{uuid}", {"age_minimum": 2}, 422, "age_minimum"),
        ("PATCH", f"/courses/{uuid}", {"site_codes": ["Z"]}, 422, "site_codes"),
        (
            "PATCH",
            f"/courses/{uuid}",
            {"accredited_provider_code": "1TZ"},
            422,
            "accredited_provider_code",
        ),
        ("PATCH", "/courses/not-a-course", {"name": "Art"}, 404, "uuid"),
        (
            "POST",
            "/partnerships",
            {"accredited_provider_code": "1TZ", "training_provider_code": "2FR"},
            422,
            "accredited_provider_code",
        ),
    ]
    wrong = []
    for method, path, body, status, field in refusals:
        response = await publish.request(method, path, json=body, headers=API)
        if response.status_code != status or not names_field(response, field):
            wrong.append(f"{method} {path} {body}: {response.status_code} {response.text}")
    assert wrong == []
    # nothing refused reached the owner's records or its feed
    assert (await publish.get("/feed/course")).json()["next"] == head
    assert sorted(await codes(publish, f"{CYCLE}/courses")) == ["2ABC", "3GTY"]


async def test_duplicates_conflict_and_writes_need_the_token(line: LineUnderTest) -> None:
    publish = line["publish"]
    duplicates = [
        ("/providers", builders.provider()),
        ("/providers/2FR/sites", builders.site()),
        ("/providers/2FR/courses", builders.course()),
        ("/providers/batch", [builders.provider("9AA"), builders.provider("9AA")]),
    ]
    for path, body in duplicates:
        response = await publish.post(path, json=body, headers=API)
        assert response.status_code == 409, f"{path}: {response.status_code} {response.text}"
    partnership = {"accredited_provider_code": "2FR", "training_provider_code": "1TZ"}
    await created(publish.post("/partnerships", json=partnership, headers=API))
    again = await publish.post("/partnerships", json=partnership, headers=API)
    assert again.status_code == 409
    assert (await publish.get(f"{CYCLE}/providers/9AA")).status_code == 404

    missing = await publish.post("/providers", json=builders.provider("9BB"))
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = await publish.post(
        "/providers", json=builders.provider("9BB"), headers={"Authorization": "Bearer guess"}
    )
    assert wrong.status_code == 403
    assert (await publish.patch("/providers/2FR", json={"name": "UCL"})).status_code == 401
    assert (await publish.get(f"{CYCLE}/providers/9BB")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subject_codes": ["W" * 1_000_000]}, "subject_codes"),
        ({"subject_codes": ["W1"] * 10_000}, "subject_codes"),
        ({"subject_codes": ["ZZ"]}, "subject_codes"),
        ({"findable": "yes"}, "findable"),
        ({"name": "Art\u0000and design"}, "name"),
    ],
)
async def test_a_course_publish_could_not_hold_is_refused_naming_the_field(
    state_dir: Path, change: dict[str, Any], field: str
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        publish = line["publish"]
        before = (await publish.get("/feed/course")).json()["changes"]
        made = await publish.post(
            "/providers/2FR/courses", json=builders.course("4ABC", **change), headers=API
        )
        changed = await publish.patch(f"/courses/{uuid}", json=change, headers=API)
        for answer in (made, changed):
            assert answer.status_code == 422, answer.text
            assert names_field(answer, field), answer.text
        assert (await publish.get("/feed/course")).json()["changes"] == before


async def test_includes_sorts_and_filters_are_served_or_refused_naming_them(
    line: LineUnderTest,
) -> None:
    publish = line["publish"]
    located = await publish.get(
        f"{CYCLE}/providers/1TZ/courses/2ABC/locations", params={"include": "location_status"}
    )
    body = located.json()
    assert spec_errors(body, "CourseLocationListResponse") == []
    statuses = {(r["type"], r["id"]): r["attributes"] for r in body["included"]}
    for site in body["data"]:
        link = site["relationships"]["location_status"]["data"]
        assert statuses[(link["type"], link["id"])]["vacancy_status"] == "full_time_vacancies"
    assert await codes(publish, f"{CYCLE}/providers", sort="-name") == ["2FR", "1TZ"]
    assert await codes(publish, f"{CYCLE}/providers", **{"filter[provider_type]": "scitt"}) == []
    assert await codes(publish, f"{CYCLE}/courses", **{"filter[funding_type]": "salary"}) == [
        "2ABC"
    ]
    suggestions = (await publish.get(f"{V1}/provider_suggestions", params={"query": "ald"})).json()
    assert spec_errors(suggestions, "ProviderSuggestionListResponse") == []
    assert [s["attributes"]["code"] for s in suggestions["data"]] == ["1TZ"]
    areas = (await publish.get(f"{V1}/subject_areas", params={"include": "subjects"})).json()
    assert spec_errors(areas, "SubjectAreaListResponse") == []
    refused = [
        (f"{CYCLE}/providers", {"include": "courses"}, "include"),
        (f"{CYCLE}/providers", {"sort": "ukprn"}, "sort"),
        (f"{CYCLE}/courses", {"filter[has_vacancies]": "true"}, "filter[has_vacancies]"),
        (f"{V1}/provider_suggestions", {"query": "al"}, "query"),
        (f"{CYCLE}/providers/ZZZ", {}, "provider_code"),
    ]
    for path, params, name in refused:
        answer = await publish.get(path, params=params)
        assert answer.status_code in (400, 404), answer.text
        assert names_field(answer, name), answer.text
        assert spec_errors(answer.json(), "StandardErrorResponse") == []
