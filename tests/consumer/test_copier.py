"""The consumer side: each owner change lands exactly once, whatever the owner's answers do."""

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.apply.models import CourseCopy as ApplyCourseCopy
from lines.becoming_a_teacher.services.find.models import CourseCopy, ProviderCopy
from lines.becoming_a_teacher.services.publish.models import GiasSchool
from lines.becoming_a_teacher.topology import LINE
from serviceline.consumer.batches import Batches, CopyStats
from serviceline.consumer.copier import Copier
from serviceline.consumer.readers import Page
from serviceline.consumer.tables import (
    COPIER_TABLES,
    AppliedChange,
    CopyCursor,
    CopyRun,
    CopyTarget,
)
from serviceline.model.topology import Edge, Policy, Topology
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import create_tables, make_engine
from serviceline.runtime.faults import Faults, FaultSpec
from serviceline.runtime.settings import CLOCK_START, ClockMode
from serviceline.runtime.upstream import Upstream, UpstreamError
from serviceline.testing import ADMIN, API, LineUnderTest, database_url, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio

FIND_COURSES = LINE.edge("publish.course.find")
FIND_TARGETS = {"provider": CopyTarget(ProviderCopy), "course": CopyTarget(CourseCopy)}
GIAS_SCHOOLS = LINE.edge("gias.school.publish")
# a curly apostrophe is in windows-1252 but not in ISO-8859-1: the file must be read as the former
CAFE = "St Mary\N{RIGHT SINGLE QUOTATION MARK}s Café School"
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


@contextlib.asynccontextmanager
async def consumer(
    service: str,
    targets: Mapping[str, CopyTarget],
    owner: str,
    handler: Handler,
    state_dir: Path,
    *,
    page_size: int = 500,
    batches: type[Batches] = Batches,
    topology: Topology = LINE,
    faults: Faults | None = None,
) -> AsyncIterator[Copier]:
    """A consumer's copier on its own database, reading its owner through `handler`."""
    engine = make_engine(database_url(state_dir, f"{service}-copies"))
    create_tables(engine, [*COPIER_TABLES, *(target.model for target in targets.values())])
    transport = httpx.MockTransport(handler)
    upstream = Upstream.connect(owner, f"http://{owner}", transport=transport)
    clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)
    try:
        copier = Copier(
            service=service,
            topology=topology,
            engine=engine,
            clock=clock,
            upstreams={owner: upstream},
            targets=targets,
            year=2027,
            page_size=page_size,
            faults=faults,
        )
        copier.batches = batches(engine=engine, clock=clock, targets=targets, faults=faults)
        yield copier
    finally:
        await upstream.aclose()
        engine.dispose()


async def forward(owner: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    answer = await owner.request(request.method, request.url.path, params=request.url.params)
    return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)


def copies(copier: Copier, edge: Edge) -> dict[str, dict[str, Any]]:
    model = copier.targets[edge.entity].model
    with Session(copier.engine) as session:
        rows = session.exec(select(model).order_by(col(getattr(model, edge.key_field))))
        return {str(getattr(row, edge.key_field)): row.model_dump(mode="json") for row in rows}


def cursor(copier: Copier, edge: Edge) -> str | None:
    with Session(copier.engine) as session:
        row = session.get(CopyCursor, edge.name)
        return None if row is None else row.position


async def owner_view(owner: httpx.AsyncClient, edge: Edge) -> dict[str, dict[str, Any]]:
    """The owner's records as the edge should have copied them."""
    body = (await owner.get(f"/records/{edge.entity}", params={"limit": 5000})).json()
    return {
        str(record[edge.key_field]): {
            **edge.translate(record),
            "source_version": record["version"],
        }
        for record in body["records"]
    }


def copy_view(copier: Copier, edge: Edge) -> dict[str, dict[str, Any]]:
    fields = [*edge.mapping.values(), "source_version"]
    return {key: {name: row[name] for name in fields} for key, row in copies(copier, edge).items()}


async def publish_courses(line: LineUnderTest, codes: list[str]) -> list[str]:
    """Provider 2FR with site A and these courses; their UUIDs."""
    await builders.publish_provider(line, builders.provider(), builders.site())
    body = [builders.course(code) for code in codes]
    created = await line["publish"].post("/providers/2FR/courses/batch", json=body, headers=API)
    assert created.status_code == 201, created.text
    return [course["uuid"] for course in created.json()]


async def test_a_redelivered_or_older_page_changes_nothing(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        art, _ = await publish_courses(line, ["AAAA", "BBBB"])
        served: list[bytes] = []
        replay: list[bytes] = []

        async def relay(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/feed/course" and replay:
                return httpx.Response(200, content=replay.pop())
            response = await forward(publish, request)
            served.append(response.content)
            return response

        async with consumer("find", FIND_TARGETS, "publish", relay, state_dir) as copier:
            first = await copier.run(FIND_COURSES.name)
            assert (first.upserted, first.unchanged) == (2, 0)
            renamed = await publish.patch(f"/courses/{art}", json={"name": "Art"}, headers=API)
            assert renamed.json()["version"] == 2
            assert (await copier.run(FIND_COURSES.name)).upserted == 1
            before = copies(copier, FIND_COURSES)
            assert (before[art]["name"], before[art]["source_version"]) == ("Art", 2)

            replay.append(served[0])  # the first page again: both courses at version 1
            again = await copier.run(FIND_COURSES.name)
            assert (again.fetched, again.upserted, again.unchanged) == (2, 0, 2)
            assert copies(copier, FIND_COURSES) == before

            await copier.run(FIND_COURSES.name)
            assert copy_view(copier, FIND_COURSES) == await owner_view(publish, FIND_COURSES)


async def test_changes_reordered_within_a_page_keep_the_newest(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        (art,) = await publish_courses(line, ["AAAA"])
        reverse = False

        async def relay(request: httpx.Request) -> httpx.Response:
            response = await forward(publish, request)
            if not reverse:
                return response
            body = response.json()
            body["changes"].reverse()
            return httpx.Response(200, json=body)

        async with consumer("find", FIND_TARGETS, "publish", relay, state_dir) as copier:
            await copier.run(FIND_COURSES.name)
            for name in ("Art", "Art II"):
                await publish.patch(f"/courses/{art}", json={"name": name}, headers=API)
            reverse = True  # version 3 arrives before version 2
            stats = await copier.run(FIND_COURSES.name)
            assert stats.fetched == 2
            copied = copies(copier, FIND_COURSES)[art]
            assert (copied["name"], copied["source_version"]) == ("Art II", 3)
            assert copy_view(copier, FIND_COURSES) == await owner_view(publish, FIND_COURSES)


async def test_a_key_deleted_and_created_again_arrives_as_the_newer_record(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish = line["publish"]
        uuid = "11111111-2222-4333-8444-555555555555"
        await publish_courses(line, [])
        await publish.post("/providers/2FR/courses", json=builders.course(uuid=uuid), headers=API)
        await line.control.run_edge(FIND_COURSES)

        assert (await publish.delete(f"/courses/{uuid}", headers=API)).status_code == 204
        again = builders.course(uuid=uuid, name="Art, reborn")
        created = await publish.post("/providers/2FR/courses", json=again, headers=API)
        assert created.json()["version"] == 3  # after 1 (created) and 2 (deleted), never 1 again
        stats = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (stats["fetched"], stats["upserted"], stats["deleted"]) == (2, 1, 0)
        copied = (await line["find"].get(f"/copies/course/{uuid}")).json()
        assert (copied["name"], copied["source_version"]) == ("Art, reborn", 3)


class DiesBeforeSecondCommit(Batches):
    """Is given every page fetched, and is killed before it commits the second."""

    applied = 0

    def apply(
        self,
        edge: Edge,
        page: Page,
        stats: CopyStats,
        *,
        now: datetime,
        position: str | None = None,
        relisting: bool = False,
    ) -> None:
        self.applied += 1
        if self.applied == 2:
            raise RuntimeError("killed between fetching the page and committing it")
        super().apply(edge, page, stats, now=now, position=position, relisting=relisting)


async def test_a_crash_between_fetching_and_committing_a_page_loses_nothing(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await publish_courses(line, ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"])
        fetched: list[str] = []

        async def relay(request: httpx.Request) -> httpx.Response:
            fetched.append(str(request.url.params["since"]))
            return await forward(publish, request)

        async with consumer(
            "find",
            FIND_TARGETS,
            "publish",
            relay,
            state_dir,
            page_size=2,
            batches=DiesBeforeSecondCommit,
        ) as dying:
            with pytest.raises(RuntimeError, match="killed"):
                await dying.run(FIND_COURSES.name)
            assert len(copies(dying, FIND_COURSES)) == 2
            first_page_end = cursor(dying, FIND_COURSES)
        assert fetched[-1] == first_page_end  # the second page was in hand when it died

        async with consumer(
            "find", FIND_TARGETS, "publish", relay, state_dir, page_size=2
        ) as restarted:
            stats = await restarted.run(FIND_COURSES.name)
            assert fetched[2] == first_page_end  # resumed from the last commit
            assert (stats.fetched, stats.upserted, stats.unchanged) == (3, 3, 0)
            assert copy_view(restarted, FIND_COURSES) == await owner_view(publish, FIND_COURSES)


async def test_a_connection_lost_part_way_loses_nothing(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await publish_courses(line, ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"])
        calls: list[int] = []

        async def relay(request: httpx.Request) -> httpx.Response:
            calls.append(len(calls))
            if len(calls) == 2:
                raise httpx.ConnectError("connection reset", request=request)
            return await forward(publish, request)

        async with consumer(
            "find", FIND_TARGETS, "publish", relay, state_dir, page_size=2
        ) as copier:
            with pytest.raises(UpstreamError) as failed:
                await copier.run(FIND_COURSES.name)
            assert failed.value.status == 503
            assert len(copies(copier, FIND_COURSES)) == 2

            stats = await copier.run(FIND_COURSES.name)
            assert (stats.fetched, stats.upserted) == (3, 3)
            assert copy_view(copier, FIND_COURSES) == await owner_view(publish, FIND_COURSES)


async def test_an_expired_cursor_relists_everything_and_misses_no_delete(state_dir: Path) -> None:
    async with in_process_line(["publish", "find"], state_dir) as line:
        publish, find = line["publish"], line["find"]
        kept, dropped = await publish_courses(line, ["AAAA", "BBBB"])
        first = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (first["upserted"], first["relisted"]) == (2, False)

        assert (await publish.delete(f"/courses/{dropped}", headers=API)).status_code == 204
        pruned = await publish.post("/admin/feed/prune", json={"keep": 0}, headers=ADMIN)
        assert pruned.json()["pruned"] > 0
        relisted = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (relisted["relisted"], relisted["deleted"]) == (True, 1)
        assert (await find.get(f"/copies/course/{dropped}")).status_code == 404
        assert (await find.get(f"/copies/course/{kept}")).status_code == 200

        # the relist resumed from the owner's head: the feed serves the reader again
        quiet = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (quiet["relisted"], quiet["upserted"], quiet["deleted"]) == (False, 0, 0)
        added = await publish.post(
            "/providers/2FR/courses", json=builders.course("CCCC"), headers=API
        )
        after = (await line.control.run_edge(FIND_COURSES))["result"]
        assert (after["relisted"], after["upserted"]) == (False, 1)
        copied = await find.get(f"/copies/course/{added.json()['uuid']}")
        assert copied.json()["code"] == "CCCC"


async def school_copies(publish: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    body = (await publish.get("/copies/school")).json()
    return {copy["urn"]: copy for copy in body["copies"]}


async def test_the_gias_snapshot_copies_english_schools_only(state_dir: Path) -> None:
    async with in_process_line(["gias", "publish"], state_dir) as line:
        gias, publish = line["gias"], line["publish"]
        schools = [
            builders.school("100001"),
            builders.school("100002", type_code="30", group_code="9", region_code="W"),
            builders.school("100003", type_code="25", group_code="6"),
            builders.school("100004", type_code="37", group_code="6", region_code="Z"),
            builders.school("100005", type_code="34", group_code="10"),
        ]
        assert (await gias.post("/schools/batch", json=schools, headers=API)).is_success
        await line.control.run_job("gias", "gias.daily_extract")
        first = (await line.control.run_edge(GIAS_SCHOOLS))["result"]
        assert (first["fetched"], first["upserted"]) == (5, 2)
        assert sorted(await school_copies(publish)) == ["100001", "100005"]

        await gias.patch("/schools/100005", json={"type_code": "30"}, headers=API)
        await gias.patch("/schools/100001", json={"name": "Aldgate Primary"}, headers=API)
        await line.control.run_job("gias", "gias.daily_extract")
        second = (await line.control.run_edge(GIAS_SCHOOLS))["result"]
        assert (second["upserted"], second["deleted"]) == (1, 1)
        copied = await school_copies(publish)
        assert list(copied) == ["100001"]
        assert copied["100001"]["name"] == "Aldgate Primary"

        third = (await line.control.run_edge(GIAS_SCHOOLS))["result"]
        assert (third["upserted"], third["unchanged"], third["deleted"]) == (0, 1, 0)


async def test_a_school_missing_from_the_file_is_removed(state_dir: Path) -> None:
    cafe = builders.school("100001", name=CAFE)
    files = [builders.edubase_file(cafe, builders.school("100002"))]
    asked: list[str] = []

    async def gias(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, content=files[-1])

    targets = {"school": CopyTarget(GiasSchool)}
    async with consumer("publish", targets, "gias", gias, state_dir) as copier:
        first = await copier.run(GIAS_SCHOOLS.name)
        assert (first.upserted, first.deleted) == (2, 0)
        assert copies(copier, GIAS_SCHOOLS)["100001"]["name"] == CAFE

        files.append(builders.edubase_file(cafe))
        second = await copier.run(GIAS_SCHOOLS.name)
        assert (second.upserted, second.unchanged, second.deleted) == (0, 1, 1)
        assert list(copies(copier, GIAS_SCHOOLS)) == ["100001"]
    # the clock reads 5 October: the import fetches the file GIAS published for the 4th
    assert asked == ["/edubase/downloads/public/edubasealldata20261004.csv"] * 2


async def test_a_local_wins_edit_counts_each_owner_value_it_withholds_once(
    state_dir: Path,
) -> None:
    # Publish keeping its own school addresses: the daily file repeats GIAS's value every day
    edge = dataclasses.replace(
        GIAS_SCHOOLS, policy=Policy.LOCAL_WINS, editable=frozenset({"address1"})
    )
    topology = dataclasses.replace(
        LINE, edges=tuple(edge if e.name == edge.name else e for e in LINE.edges)
    )
    files = [builders.edubase_file(builders.school("100001"))]

    async def gias(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=files[-1])

    targets = {"school": CopyTarget(GiasSchool)}
    async with consumer("publish", targets, "gias", gias, state_dir, topology=topology) as copier:
        await copier.run(edge.name)
        with Session(copier.engine) as session:
            school = session.get_one(GiasSchool, "100001")
            school.address1, school.local_edits = "1 Local Road", ["address1"]
            session.add(school)
            session.commit()

        files.append(builders.edubase_file(builders.school("100001", street="2 Owner Road")))
        withheld = [(await copier.run(edge.name)).withheld_owner_changes for _ in range(3)]
        files.append(builders.edubase_file(builders.school("100001", street="3 Owner Road")))
        withheld.append((await copier.run(edge.name)).withheld_owner_changes)

        assert withheld == [1, 0, 0, 1]
        kept = copies(copier, edge)["100001"]
        assert (kept["address1"], kept["local_edits"]) == ("1 Local Road", ["address1"])
        assert kept["withheld"] == {"address1": "3 Owner Road"}
        with Session(copier.engine) as session:
            assert session.get_one(CopyCursor, edge.name).withheld_owner_changes == 2


async def test_updated_since_misses_a_hard_delete_until_the_full_sync(state_dir: Path) -> None:
    edges = [LINE.edge(f"publish.{entity}.apply") for entity in ("provider", "site", "course")]
    async with in_process_line(["publish", "apply"], state_dir) as line:
        publish, apply = line["publish"], line["apply"]
        kept, dropped = await publish_courses(line, ["AAAA", "BBBB"])
        for edge in edges:
            await line.control.run_edge(edge)
        assert (await apply.get(f"/copies/course/{dropped}")).status_code == 200

        assert (await publish.delete(f"/courses/{dropped}", headers=API)).status_code == 204
        await line.control.advance(by="10m")
        incremental = (await line.control.run_edge(edges[-1]))["result"]
        assert (incremental["mechanism"], incremental["deleted"]) == ("updated_since", 0)
        assert (await apply.get(f"/copies/course/{dropped}")).status_code == 200

        full = (await line.control.run_edge(edges[-1], full=True))["result"]
        assert full["deleted"] == 1
        assert (await apply.get(f"/copies/course/{dropped}")).status_code == 404
        assert (await apply.get(f"/copies/course/{kept}")).status_code == 200


@pytest.mark.parametrize(
    ("edge", "model"),
    [(FIND_COURSES, CourseCopy), (LINE.edge("publish.course.apply"), ApplyCourseCopy)],
    ids=["feed", "updated_since"],
)
async def test_a_relisting_puts_right_a_copy_that_claims_a_later_version(
    state_dir: Path, edge: Edge, model: type[CourseCopy | ApplyCourseCopy]
) -> None:
    """A copy ahead of its owner refuses every later change as older, until a relist repairs it."""
    async with in_process_line(["publish", edge.consumer], state_dir) as line:
        (uuid,) = await publish_courses(line, ["AAAA"])
        await line.control.sync()
        engine = make_engine(database_url(state_dir, edge.consumer))
        try:
            with Session(engine) as session:
                row = session.get_one(model, uuid)
                row.sqlmodel_update({"source_version": 99, "name": "A name never published"})
                session.add(row)
                session.commit()
        finally:
            engine.dispose()
        renamed = await line["publish"].patch(f"/courses/{uuid}", json={"name": "Art"}, headers=API)
        assert renamed.json()["version"] == 2

        await line.control.run_edge(edge)
        assert (await line.copy_of(edge.consumer, "course", uuid))["source_version"] == 99
        await line.control.run_edge(edge, full=True)
        repaired = await line.copy_of(edge.consumer, "course", uuid)
        assert (repaired["name"], repaired["source_version"]) == ("Art", 2)


def logged(copier: Copier) -> tuple[list[tuple[str, int | None, str]], list[CopyRun]]:
    """The copier's applied log, as (key, version, op), and its copy runs."""
    with Session(copier.engine) as session:
        rows = session.exec(select(AppliedChange).order_by(col(AppliedChange.id)))
        applied = [(row.key, row.version, row.op) for row in rows]
        return applied, list(session.exec(select(CopyRun).order_by(col(CopyRun.id))))


class SecondBatchDiedError(Exception):
    pass


async def test_a_death_mid_batch_leaves_neither_its_applied_rows_nor_its_counts(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        uuids = await publish_courses(line, ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE"])
        batches: list[str] = []

        def die() -> None:
            batches.append("written")
            if len(batches) == 2:
                raise SecondBatchDiedError

        faults = Faults(SimulatedClock(ClockMode.MANUAL, CLOCK_START), die=die)
        faults.add(FaultSpec(kind="die_mid_batch", edge=FIND_COURSES.name))

        async def relay(request: httpx.Request) -> httpx.Response:
            return await forward(publish, request)

        async with consumer(
            "find", FIND_TARGETS, "publish", relay, state_dir, page_size=2, faults=faults
        ) as copier:
            with pytest.raises(SecondBatchDiedError):
                await copier.run(FIND_COURSES.name)
            applied, runs = logged(copier)
            # the second batch had upserted its two courses and logged them when it died
            assert applied == [(uuid, 1, "upsert") for uuid in uuids[:2]]
            assert [(r.upserted, r.finished_at, r.requests) for r in runs] == [(2, None, 2)]
            assert set(copies(copier, FIND_COURSES)) == set(uuids[:2])

            faults.clear()
            await copier.run(FIND_COURSES.name)
            applied, runs = logged(copier)
            assert applied == [(uuid, 1, "upsert") for uuid in uuids]
            assert [(r.upserted, r.found_nothing) for r in runs] == [(2, False), (3, False)]
            assert runs[1].finished_at == CLOCK_START


async def test_each_of_two_runs_at_once_counts_only_its_own_requests(state_dir: Path) -> None:
    """Find's two edges share one upstream to Publish: each run's requests are its own."""
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await publish_courses(line, ["AAAA", "BBBB", "CCCC"])
        served: dict[str, list[int]] = {"/feed/provider": [], "/feed/course": []}
        order: list[str] = []

        async def relay(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0)  # let the other run's request in between
            response = await forward(publish, request)
            served[request.url.path].append(len(response.content))
            order.append(request.url.path)
            return response

        async with consumer(
            "find", FIND_TARGETS, "publish", relay, state_dir, page_size=1
        ) as copier:
            providers, courses = await asyncio.gather(
                copier.run("publish.provider.find"), copier.run(FIND_COURSES.name)
            )
            _, runs = logged(copier)
        counted = {run.edge: (run.requests, run.bytes) for run in runs}
        assert counted == {
            "publish.provider.find": (
                len(served["/feed/provider"]),
                sum(served["/feed/provider"]),
            ),
            FIND_COURSES.name: (len(served["/feed/course"]), sum(served["/feed/course"])),
        }
        assert (providers.requests, courses.requests) == (3, 3)
        # a page a record: the two runs' requests went out in turn, not one run after the other
        assert order != sorted(order, key=order.index)


async def test_a_snapshot_of_an_owner_that_has_not_moved_is_skipped_until_a_copy_is_edited(
    state_dir: Path,
) -> None:
    asked: list[str] = []

    async def publish(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(
            200, json={"entity": "course", "records": [], "next_after": None, "head": 7}
        )

    async with consumer("find", FIND_TARGETS, "publish", publish, state_dir) as copier:
        runs = []
        for moment, heads, edited in (
            (1, {}, False),  # the owner's head unknown: asked
            (2, {"publish": 7}, False),  # asked, and found nothing
            (3, {"publish": 7}, False),  # nothing moved: not asked
            (4, {"publish": 7}, True),  # a copy edited since: asked
            (5, {"publish": 7}, False),
            (6, {"publish": 8}, False),  # the owner moved: asked
        ):
            copier.clock.set(datetime(2026, 10, 5, moment, tzinfo=UTC))
            if edited:
                copier.edited(FIND_COURSES.name)
            async with copier.knowing(heads):
                runs.append((await copier.run(FIND_COURSES.name, full=True)).skipped)
            with Session(copier.engine) as session:
                last = session.get_one(CopyCursor, FIND_COURSES.name).last_full_sync_at
            assert last == datetime(2026, 10, 5, moment, tzinfo=UTC)
        assert runs == [False, False, True, False, True, False]
        assert len(asked) == 4
        assert cursor(copier, FIND_COURSES) == "7"
