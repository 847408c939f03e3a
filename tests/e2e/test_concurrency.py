"""Owner writes at once over real HTTP: each version logged once, in order; copies follow."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serviceline.testing import API, LineUnderTest, process_line
from tests import builders

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
WRITERS = 20
WRITES_EACH = 10


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[LineUnderTest]:
    async with process_line(["publish", "find", "apply"], tmp_path) as running:
        yield running


async def logged_versions(publish: httpx.AsyncClient, entity: str, key: str) -> list[int]:
    """The versions Publish's change log holds for one record, in the log's order."""
    versions: list[int] = []
    since, more = 0, True
    while more:
        page = (await publish.get(f"/feed/{entity}", params={"since": since})).json()
        versions += [change["version"] for change in page["changes"] if change["key"] == key]
        since, more = page["next"], page["has_more"]
    return versions


async def at_once(*writes: Any) -> list[httpx.Response]:
    responses: list[httpx.Response] = await asyncio.gather(*writes)
    refused = [r.text for r in responses if r.status_code not in (200, 201)]
    assert not refused, refused
    return responses


async def test_writers_on_one_record_lose_no_version(line: LineUnderTest) -> None:
    uuid = await builders.publish_course(
        line, builders.provider(), builders.course(), builders.site()
    )
    publish = line["publish"]

    async def writer(number: int) -> list[httpx.Response]:
        return [
            await publish.patch(
                f"/courses/{uuid}", json={"name": f"Course {number}.{n}"}, headers=API
            )
            for n in range(WRITES_EACH)
        ]

    written = [r for rs in await asyncio.gather(*map(writer, range(WRITERS))) for r in rs]
    assert {r.status_code for r in written} == {200}
    writes = 1 + WRITERS * WRITES_EACH
    # each response reports the version its own write made
    assert sorted(r.json()["version"] for r in written) == list(range(2, writes + 1))
    assert await logged_versions(publish, "course", uuid) == list(range(1, writes + 1))
    owner = (await publish.get("/records/course")).json()["records"][0]
    assert owner["version"] == writes

    await line.control.advance(by="10m")
    for consumer in ("find", "apply"):
        copy = await line.copy_of(consumer, "course", uuid)
        assert (copy["source_version"], copy["name"]) == (writes, owner["name"])


async def test_writers_on_one_provider_through_its_courses_lose_no_version(
    line: LineUnderTest,
) -> None:
    """Every course written moves its provider's version too: the provider is written at once."""
    provider = builders.provider()
    await builders.publish_provider(line, provider, builders.site())
    publish = line["publish"]
    path = f"/providers/{provider['code']}/courses"
    made = await at_once(
        *(
            publish.post(path, json=builders.course(code=f"{n:04}"), headers=API)
            for n in range(WRITERS)
        )
    )
    uuids = [r.json()["uuid"] for r in made]
    await at_once(
        *(
            publish.patch(f"/courses/{uuid}", json={"name": f"Course {n}.{m}"}, headers=API)
            for n, uuid in enumerate(uuids)
            for m in range(WRITES_EACH // 2)
        )
    )
    # the provider itself, one site, then every course created and patched
    writes = 2 + WRITERS + WRITERS * (WRITES_EACH // 2)
    assert await logged_versions(publish, "provider", provider["code"]) == list(
        range(1, writes + 1)
    )
    for uuid in uuids:
        assert await logged_versions(publish, "course", uuid) == list(
            range(1, 2 + WRITES_EACH // 2)
        )

    await line.control.advance(by="10m")
    held = (await publish.get("/records/provider")).json()["records"][0]
    assert held["version"] == writes
    for consumer in ("find", "apply"):
        copy = await line.copy_of(consumer, "provider", provider["code"])
        assert copy["source_version"] == writes
