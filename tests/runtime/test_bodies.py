"""Input no service can store gets a 422 naming where it is, and nothing stored changes."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from serviceline.testing import API, in_process_line, names_field, refusal
from tests import builders

pytestmark = pytest.mark.anyio
JSON = {**API, "content-type": "application/json"}
TOO_BIG = str(2**63)


async def stored(gias: httpx.AsyncClient) -> Any:
    return (await gias.get("/feed/school")).json()["changes"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("-Infinity", "finite"),
        ("1e999", "finite"),
        ('"\\ud800"', "surrogate"),
        ('"Aldgate\\u0000School"', "NUL"),
        (TOO_BIG, "64 bits"),
    ],
)
async def test_a_body_no_database_can_store_is_refused_naming_the_field(
    state_dir: Path, name: str, says: str
) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        assert (await gias.post("/schools", json=builders.school(), headers=API)).is_success
        before = await stored(gias)
        body = f'{{"name": {name}}}'
        for answer in (
            await gias.patch("/schools/100000", content=body, headers=JSON),
            await gias.post(
                "/schools", content=f'{{"urn": "100001", "name": {name}}}', headers=JSON
            ),
        ):
            assert answer.status_code == 422, answer.text
            assert names_field(answer, "name"), answer.text
            assert says in refusal(answer)
        assert await stored(gias) == before


async def test_a_number_past_64_bits_in_a_query_is_refused_naming_it(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        # API v1 answers a bad parameter with 400, as the real API does; the kernel with 422
        for service, path, field, status in (
            ("publish", f"/feed/course?since={TOO_BIG}", "since", 422),
            (
                "publish",
                f"/api/public/v1/recruitment_cycles/current/courses?page[page]={TOO_BIG}",
                "page[page]",
                400,
            ),
            ("find", f"/courses?page={TOO_BIG}", "page", 422),
        ):
            answer = await line[service].get(path)
            assert answer.status_code == status, answer.text
            assert names_field(answer, field), answer.text


async def test_an_unknown_read_only_or_null_field_in_a_patch_is_refused(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        uuid = await builders.publish_course(
            line, builders.provider(), builders.course(), builders.site()
        )
        publish = line["publish"]
        before = (await publish.get("/feed/course")).json()["changes"]
        for change, field in (
            ({"nmae": "Art"}, "nmae"),
            ({"code": "9ZZZ"}, "code"),
            ({"uuid": "0" * 36}, "uuid"),
            ({"name": None}, "name"),
        ):
            answer = await publish.patch(f"/courses/{uuid}", json=change, headers=API)
            assert answer.status_code == 422, answer.text
            assert names_field(answer, field), answer.text
        assert (await publish.get("/feed/course")).json()["changes"] == before


async def test_a_nul_in_a_query_or_path_is_refused_naming_where(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        in_query = await gias.get("/schools", params={"after": "1\x000"})
        assert in_query.status_code == 422, in_query.text
        assert in_query.json()["detail"][0]["loc"] == ["query", "after"]
        in_path = await gias.get("/schools/10%000")
        assert in_path.status_code == 422, in_path.text
        assert in_path.json()["detail"][0]["loc"] == ["path"]
