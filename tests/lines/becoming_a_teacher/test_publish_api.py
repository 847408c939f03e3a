"""A tree walk takes a course list or a course's locations again only while the log leaves it."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lines.becoming_a_teacher.publish_api import (
    PUBLISH_V1_KEYS,
    KnownSubtrees,
    Located,
    PublishV1ProviderTreeReader,
)
from serviceline.consumer.readers import Page, Walked
from serviceline.runtime.upstream import Traffic, Upstream
from serviceline.testing import ADMIN, API, LineUnderTest, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio

ENTITIES = ("provider", "course", "site")
# a walk reading again after the log: the listing, and the log of each entity
AFTER_THE_LOG = 1 + len(ENTITIES)
Change = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
async def line(state_dir: Path) -> AsyncIterator[LineUnderTest]:
    """2FR and 1TZ, each with sites A and B, X100 at A and Y200 at both."""
    async with in_process_line(["publish"], state_dir) as line:
        for code in ("2FR", "1TZ"):
            sites = (builders.site(), builders.site("B"))
            await builders.publish_course(
                line, builders.provider(code), builders.course("X100"), *sites
            )
            second = builders.course("Y200", site_codes=["A", "B"])
            made = await line["publish"].post(
                f"/providers/{code}/courses", json=second, headers=API
            )
            assert made.status_code == 201, made.text
        yield line


async def owner_head(publish: httpx.AsyncClient) -> int:
    view = (await publish.get("/admin/clock", headers=ADMIN)).json()
    found: int = view["head"]
    return found


def reader(upstream: Upstream, known: KnownSubtrees | None) -> PublishV1ProviderTreeReader:
    return PublishV1ProviderTreeReader(upstream, "site", PUBLISH_V1_KEYS, 2027, known=known)


async def walked(tree: PublishV1ProviderTreeReader) -> tuple[list[Any], int, int]:
    """What a whole walk read, the requests it counts to its run, and the requests really made."""
    before = tree.upstream.requests
    pages = [(w.entity, w.page, w.traffic) async for w in tree.walk(None, ENTITIES)]
    counted = sum(traffic.requests for _, _, traffic in pages)
    return pages, counted, tree.upstream.requests - before


async def asked(upstream: Upstream) -> tuple[list[Any], int]:
    """A walk that asks everything: what it read, and what it counts."""
    pages, counted, _ = await walked(reader(upstream, None))
    return pages, counted


async def record(publish: httpx.AsyncClient, entity: str, provider: str, code: str) -> str:
    """The key of a provider's course or site with this code."""
    records = (await publish.get(f"/records/{entity}", headers=API)).json()["records"]
    [found] = [r for r in records if (r["provider_code"], r["code"]) == (provider, code)]
    key: str = found["uuid"]
    return key


async def answered(response: Awaitable[httpx.Response], status: int = 200) -> None:
    done = await response
    assert done.status_code == status, done.text


async def rename_course(publish: httpx.AsyncClient) -> None:
    course = await record(publish, "course", "2FR", "X100")
    await answered(publish.patch(f"/courses/{course}", json={"name": "Art"}, headers=API))


async def withdraw_course(publish: httpx.AsyncClient) -> None:
    course = await record(publish, "course", "2FR", "Y200")
    await answered(publish.patch(f"/courses/{course}", json={"state": "withdrawn"}, headers=API))


async def unlink_site(publish: httpx.AsyncClient) -> None:
    """Y200 leaves B: no course of 2FR lists it now."""
    course = await record(publish, "course", "2FR", "Y200")
    await answered(publish.patch(f"/courses/{course}", json={"site_codes": ["A"]}, headers=API))


async def rename_site(publish: httpx.AsyncClient) -> None:
    site = await record(publish, "site", "1TZ", "B")
    await answered(publish.patch(f"/sites/{site}", json={"name": "Bow"}, headers=API))


async def delete_course(publish: httpx.AsyncClient) -> None:
    course = await record(publish, "course", "2FR", "X100")
    await answered(publish.delete(f"/courses/{course}", headers=API), 204)


async def delete_site(publish: httpx.AsyncClient) -> None:
    """Y200 still names B, which is no longer there."""
    site = await record(publish, "site", "1TZ", "B")
    await answered(publish.delete(f"/sites/{site}", headers=API), 204)


async def rename_provider(publish: httpx.AsyncClient) -> None:
    await answered(publish.patch("/providers/2FR", json={"name": "Bloomsbury"}, headers=API))


@pytest.mark.parametrize(
    ("change", "made_again"),
    [
        # 2FR's course list, and X100's locations
        (rename_course, 2),
        (withdraw_course, 2),
        (unlink_site, 2),
        # 1TZ's course list stands; both its courses' locations are asked
        (rename_site, 2),
        (delete_site, 2),
        # 2FR's course list, which no longer names X100: Y200's locations stand
        (delete_course, 1),
        # no answer shows a provider's own fields
        (rename_provider, 0),
    ],
)
async def test_a_change_reads_again_only_what_it_could_change(
    line: LineUnderTest, change: Change, made_again: int
) -> None:
    publish = line["publish"]
    upstream = Upstream("publish", publish)
    known = KnownSubtrees(head=await owner_head(publish))
    first, first_counted, first_made = await walked(reader(upstream, known))
    assert first_counted == first_made == 1 + 2 * (1 + 2)  # the listing, each provider, each course
    await change(publish)
    known.head = await owner_head(publish)
    pages, counted, made = await walked(reader(upstream, known))
    assert (pages, counted) == await asked(upstream)
    assert pages != first
    assert made == AFTER_THE_LOG + made_again


async def test_an_untouched_walk_is_taken_again_with_what_asking_cost(
    line: LineUnderTest,
) -> None:
    publish = line["publish"]
    upstream = Upstream("publish", publish)
    known = KnownSubtrees(head=await owner_head(publish))
    first, first_counted, _ = await walked(reader(upstream, known))
    again, counted, made = await walked(reader(upstream, known))
    assert again == first
    assert counted == first_counted
    assert made == 1  # only the listing, whose window the run's moment chooses


async def test_a_site_made_under_a_code_a_course_names_joins_its_locations(
    line: LineUnderTest,
) -> None:
    """No answer held B when it was read: the API does not say which codes a course names."""
    publish = line["publish"]
    upstream = Upstream("publish", publish)
    await delete_site(publish)
    known = KnownSubtrees(head=await owner_head(publish))
    await walked(reader(upstream, known))
    made = publish.post("/providers/1TZ/sites", json=builders.site("B", name="Bow"), headers=API)
    await answered(made, 201)
    known.head = await owner_head(publish)
    pages, counted, _ = await walked(reader(upstream, known))
    assert (pages, counted) == await asked(upstream)
    [sites] = [
        p for entity, p, _ in pages if entity == "site" and p.partition == ("provider_code", "1TZ")
    ]
    assert "Bow" in {site.fields["name"] for site in sites.records}


async def test_a_course_made_again_under_its_code_is_asked_about(line: LineUnderTest) -> None:
    publish = line["publish"]
    upstream = Upstream("publish", publish)
    known = KnownSubtrees(head=await owner_head(publish))
    await walked(reader(upstream, known))
    await delete_course(publish)
    again = builders.course("X100", site_codes=["B"])
    await answered(publish.post("/providers/2FR/courses", json=again, headers=API), 201)
    known.head = await owner_head(publish)
    pages, counted, made = await walked(reader(upstream, known))
    assert (pages, counted) == await asked(upstream)
    assert made == AFTER_THE_LOG + 2  # 2FR's course list, and the new X100's locations


async def test_without_a_vouched_head_every_request_is_made(line: LineUnderTest) -> None:
    """A fault listed leaves the head unvouched: the walk asks as if it knew nothing."""
    publish = line["publish"]
    upstream = Upstream("publish", publish)
    known = KnownSubtrees(head=await owner_head(publish))
    await walked(reader(upstream, known))
    await rename_site(publish)
    known.head = None
    pages, counted, made = await walked(reader(upstream, known))
    assert (pages, counted) == await asked(upstream)
    assert counted == made == 7
    known.head = await owner_head(publish)
    pages, counted, made = await walked(reader(upstream, known))
    assert (pages, counted) == await asked(upstream)
    assert made == 7  # what was read while nothing was vouched is not kept: nothing is known


async def test_a_log_that_cannot_be_read_forgets_every_answer() -> None:
    feed_reads = []

    def owner(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/feed/"):
            feed_reads.append(request.url.path)
            return httpx.Response(410, json={"detail": "pruned"})
        return httpx.Response(200, json={"data": []})

    transport = httpx.MockTransport(owner)
    async with httpx.AsyncClient(base_url="http://publish", transport=transport) as client:
        upstream = Upstream("publish", client)
        known = KnownSubtrees(head=3)
        await known.catch_up(upstream, ENTITIES)
        known.remember_listing("2FR", Walked("course", Page([]), Traffic()))
        known.remember_locations("2FR", "X100", Located([], Traffic()))
        assert known.listing("2FR") is not None
        assert known.locations("2FR", "X100") is not None
        known.head = 9
        await known.catch_up(upstream, ENTITIES)
        assert feed_reads == ["/feed/provider"]
        assert known.listing("2FR") is None
        assert known.locations("2FR", "X100") is None
