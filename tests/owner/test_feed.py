"""The owner side: a change and its change-log entry commit together, and the feed serves them."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from fastapi.exceptions import RequestValidationError
from sqlalchemy import inspect, text
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.stubs.gias.models import School
from serviceline.owner.feed import ChangeLog, FeedNotifier, add_new, attach, head, new_record
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import create_tables, make_engine
from serviceline.runtime.settings import CLOCK_START, ClockMode
from serviceline.testing import (
    ADMIN,
    API,
    database_url,
    in_process_line,
    refusal,
    service_app,
    service_settings,
)
from tests import builders

pytestmark = pytest.mark.anyio


async def read_feed(client: httpx.AsyncClient, entity: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/feed/{entity}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_write_and_its_change_log_entry_commit_together(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        created = await gias.post("/schools", json=builders.school("100001"), headers=API)
        assert created.status_code == 201, created.text
        assert created.json()["version"] == 1
        assert created.json()["updated_at"] == "2026-10-05T00:00:00Z"

        moved = await gias.post("/admin/clock/advance", json={"by": "90m"}, headers=ADMIN)
        assert moved.status_code == 200, moved.text
        renamed = await gias.patch("/schools/100001", json={"name": "Aldgate"}, headers=API)
        assert renamed.json()["version"] == 2
        assert renamed.json()["updated_at"] == "2026-10-05T01:30:00Z"

        changes = (await read_feed(gias, "school"))["changes"]
        assert [(c["key"], c["op"], c["version"]) for c in changes] == [
            ("100001", "upsert", 1),
            ("100001", "upsert", 2),
        ]
        assert [c["changed_at"] for c in changes] == [
            "2026-10-05T00:00:00Z",
            "2026-10-05T01:30:00Z",
        ]
        assert [c["record"]["name"] for c in changes] == ["The Aldgate School", "Aldgate"]
        assert changes[1]["record"]["version"] == 2

        # writing what is already there is no change: no version, no entry
        same = await gias.patch("/schools/100001", json={"name": "Aldgate"}, headers=API)
        assert same.json()["version"] == 2
        assert len((await read_feed(gias, "school"))["changes"]) == 2


async def test_a_refused_write_leaves_neither_the_record_nor_a_log_entry(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        first = await gias.post("/schools", json=builders.school("100001"), headers=API)
        assert first.status_code == 201

        again = await gias.post(
            "/schools", json=builders.school("100001", name="Another"), headers=API
        )
        assert again.status_code == 409
        batch = [builders.school("100002"), builders.school("100001")]
        refused = await gias.post("/schools/batch", json=batch, headers=API)
        assert refused.status_code == 409

        assert (await gias.get("/schools/100002")).status_code == 404
        school = (await gias.get("/schools/100001")).json()
        assert (school["name"], school["version"]) == ("The Aldgate School", 1)
        changes = (await read_feed(gias, "school"))["changes"]
        assert [(c["key"], c["version"]) for c in changes] == [("100001", 1)]


async def test_a_request_that_fails_after_flushing_rolls_its_log_entries_back(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await builders.publish_provider(line, builders.provider(), builders.site())
        before = await read_feed(publish, "provider")

        # the first course's site check flushes the provider's touch; the second is refused
        batch = [builders.course("AAAA"), builders.course("BBBB", site_codes=["Z"])]
        refused = await publish.post("/providers/2FR/courses/batch", json=batch, headers=API)
        assert refused.status_code == 422
        assert refusal(refused).startswith("site_codes:")

        assert await read_feed(publish, "provider") == before
        assert (await read_feed(publish, "course"))["changes"] == []
        listed = (await publish.get("/api/public/v1/recruitment_cycles/2027/providers/2FR")).json()
        assert listed["data"]["meta"]["version"] == before["changes"][-1]["version"]


def crash_after_flush(session: Session) -> None:
    with session:
        session.add(School.model_validate(builders.school("100001")))
        session.flush()
        assert head(session) == 1  # the entry exists, inside the transaction
        raise RuntimeError("crash after flush")


def test_an_exception_after_flush_leaves_neither_record_nor_entry(state_dir: Path) -> None:
    engine = make_engine(database_url(state_dir, "owner"))
    create_tables(engine, [ChangeLog, School])
    clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)
    try:
        with pytest.raises(RuntimeError, match="after flush"):
            crash_after_flush(attach(Session(engine), clock, None))
        with attach(Session(engine), clock, None) as session:
            assert session.get(School, "100001") is None
            assert list(session.exec(select(ChangeLog))) == []

            session.add(School.model_validate(builders.school("100001")))
            session.commit()
            school = session.get(School, "100001")
            assert school is not None
            assert (school.version, school.updated_at) == (1, CLOCK_START)
            entries = list(session.exec(select(ChangeLog)))
            assert [(e.key, e.op, e.version, e.changed_at) for e in entries] == [
                ("100001", "upsert", 1, CLOCK_START)
            ]
    finally:
        engine.dispose()


def test_a_change_log_of_before_gets_the_version_index_and_the_lookup_reads_it(
    state_dir: Path,
) -> None:
    engine = make_engine(database_url(state_dir, "owner"))
    create_tables(engine, [ChangeLog, School])
    index = "ix_kernel_changelog_entity_key_version"
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DROP INDEX {index}"))
        create_tables(engine, [ChangeLog, School])
        assert index in {
            found["name"] for found in inspect(engine).get_indexes(ChangeLog.__tablename__)
        }
        if engine.dialect.name == "sqlite":
            lookup = (
                "EXPLAIN QUERY PLAN SELECT key, max(version) FROM kernel_changelog"
                " WHERE entity = 'school' AND key IN ('1', '2') GROUP BY key"
            )
            with engine.connect() as connection:
                plan = " ".join(str(row[-1]) for row in connection.execute(text(lookup)))
            assert index in plan, plan
    finally:
        engine.dispose()


def stored_by(
    state_dir: Path,
    name: str,
    store: Callable[[Session, list[School]], None],
    make: Callable[[dict[str, Any]], School] = School.model_validate,
) -> Any:
    """Schools and log entries after a line of writes, the last batch made by `make` and
    stored by `store`."""
    engine = make_engine(database_url(state_dir, name))
    create_tables(engine, [ChangeLog, School])
    clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)
    try:
        with attach(Session(engine), clock, None) as session:
            session.add(School.model_validate(builders.school("100001")))
            session.add(School.model_validate(builders.school("100002")))
            session.commit()
            session.delete(session.get_one(School, "100002"))
            session.commit()
        clock.set(CLOCK_START + timedelta(hours=1))
        with attach(Session(engine), clock, None) as session:
            # a change pending in the session when the batch arrives, as touching a provider is
            renamed = session.get_one(School, "100001")
            renamed.name = "Renamed"
            session.add(renamed)
            batch = [make(builders.school(u)) for u in ("100003", "100002")]
            store(session, batch)
            session.commit()
            returned = [(s.urn, s.version, s.updated_at) for s in batch]
        with Session(engine) as session:
            schools = [
                s.model_dump(exclude={"stamp"})
                for s in session.exec(select(School).order_by("urn"))
            ]
            log = [
                (e.seq, e.entity, e.key, e.op, e.version, e.changed_at, e.record)
                for e in session.exec(select(ChangeLog).order_by(col(ChangeLog.seq)))
            ]
            stamps = [s.stamp for s in session.exec(select(School))]
        return returned, schools, log, stamps
    finally:
        engine.dispose()


def flushed(session: Session, schools: list[School]) -> None:
    session.add_all(schools)
    session.flush()


def test_a_batch_added_at_once_stores_and_logs_what_adding_and_flushing_would(
    state_dir: Path,
) -> None:
    by_flush = stored_by(state_dir, "by_flush", flushed)
    at_once = stored_by(state_dir, "at_once", add_new)
    assert at_once[:3] == by_flush[:3]
    returned, _, log, stamps = at_once
    # a key deleted and created again carries on from its last logged version
    assert returned == [
        ("100003", 1, later := CLOCK_START + timedelta(hours=1)),
        ("100002", 3, later),
    ]
    # the new records are logged first, then the change the session held
    assert [(key, version) for _, _, key, _, version, _, _ in log[-3:]] == [
        ("100003", 1),
        ("100002", 3),
        ("100001", 2),
    ]
    assert all(stamps)


def test_a_new_record_is_what_model_validate_makes_of_the_body(state_dir: Path) -> None:
    bodies = [builders.school(urn) for urn in ("100003", "100002")]
    made = [new_record(School, body, {"name": "Aldgate"}, at=n) for n, body in enumerate(bodies)]
    validated = [School.model_validate(body, update={"name": "Aldgate"}) for body in bodies]
    assert [(s.model_dump(), s.model_fields_set) for s in made] == [
        (s.model_dump(), s.model_fields_set) for s in validated
    ]
    by_flush = stored_by(state_dir, "by_flush", flushed)
    for store in (flushed, add_new):
        stored = stored_by(state_dir, store.__name__, store, lambda body: new_record(School, body))
        assert stored[:3] == by_flush[:3]

    with pytest.raises(RequestValidationError) as refused:
        new_record(School, {**builders.school(), "urn": "12"}, {"name": ""}, at=3)
    assert sorted(problem["loc"] for problem in refused.value.errors()) == [
        ("body", 3, "name"),
        ("body", 3, "urn"),
    ]


def test_writers_racing_in_the_database_take_turns_and_lose_no_version(state_dir: Path) -> None:
    """Below the request queue: sessions on their own threads, as jobs and copiers write."""
    engine = make_engine(database_url(state_dir, "owner"))
    create_tables(engine, [ChangeLog, School])
    clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)
    writers, writes_each = 8, 10

    def rename(writer: int) -> None:
        for n in range(writes_each):
            with attach(Session(engine), clock, None) as session:
                school = session.get_one(School, "100001")
                school.name = f"School {writer}.{n}"
                session.add(school)
                session.commit()

    try:
        with attach(Session(engine), clock, None) as session:
            session.add(School.model_validate(builders.school("100001")))
            session.commit()
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(rename, range(writers)))
        with Session(engine) as session:
            logged = session.exec(select(ChangeLog.version).order_by(col(ChangeLog.seq))).all()
            assert list(logged) == list(range(1, writers * writes_each + 2))
            assert session.get_one(School, "100001").version == writers * writes_each + 1
    finally:
        engine.dispose()


async def test_the_response_is_sent_only_once_the_change_is_committed(state_dir: Path) -> None:
    app = service_app("gias", service_settings("gias", state_dir))
    request = json.dumps(builders.school("100009")).encode()
    committed_when_answered: list[bool] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": request, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 201
            # a client holding its 201 may read the feed at once: the change must be there
            with Session(app.state.kernel.engine) as session:
                committed_when_answered.append(session.get(School, "100009") is not None)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/schools",
        "raw_path": b"/schools",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", API["Authorization"].encode()),
        ],
        "server": ("gias", 80),
        "client": ("test", 1),
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert committed_when_answered == [True]


async def test_the_feed_pages_in_seq_order(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        urns = [f"10000{n}" for n in range(1, 6)]
        batch = [builders.school(urn) for urn in urns]
        assert (await gias.post("/schools/batch", json=batch, headers=API)).status_code == 201

        pages = []
        since = 0
        while True:
            page = await read_feed(gias, "school", since=since, limit=2)
            pages.append(page)
            assert page["next"] >= since
            since = page["next"]
            if not page["has_more"]:
                break
        assert [len(p["changes"]) for p in pages] == [2, 2, 1]
        assert [p["has_more"] for p in pages] == [True, True, False]
        seqs = [c["seq"] for p in pages for c in p["changes"]]
        assert seqs == sorted(seqs) == list(range(1, 6))
        assert pages[0]["next"] == seqs[1]
        assert sorted(c["key"] for p in pages for c in p["changes"]) == urns

        # a reader at the head gets nothing and keeps its place
        assert await read_feed(gias, "school", since=5) == {
            "entity": "school",
            "changes": [],
            "next": 5,
            "has_more": False,
        }
        assert (await gias.get("/feed/school", params={"limit": 0})).status_code == 422


async def test_an_entitys_feed_holds_only_its_own_changes(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        publish = line["publish"]
        await builders.publish_provider(line, builders.provider(), builders.site())
        created = await publish.post("/providers/2FR/courses", json=builders.course(), headers=API)
        uuid = created.json()["uuid"]
        deleted = await publish.delete(f"/courses/{uuid}", headers=API)
        assert deleted.status_code == 204

        courses = await read_feed(publish, "course", limit=1)
        assert [(c["key"], c["op"], c["version"]) for c in courses["changes"]] == [
            (uuid, "upsert", 1)
        ]
        assert courses["has_more"] is True
        rest = await read_feed(publish, "course", since=courses["next"])
        assert [(c["key"], c["op"], c["version"], c["record"]) for c in rest["changes"]] == [
            (uuid, "delete", 2, None)
        ]
        providers = await read_feed(publish, "provider")
        assert {c["key"] for c in providers["changes"]} == {"2FR"}
        sites = await read_feed(publish, "site")
        assert [c["record"]["code"] for c in sites["changes"]] == ["A"]
        # the entities' feeds split one log: every reader ends at the same head
        assert rest["next"] == providers["next"] == sites["next"]
        seqs = [c["seq"] for page in (courses, rest, providers, sites) for c in page["changes"]]
        assert sorted(seqs) == list(range(1, rest["next"] + 1))

        unknown = await publish.get("/feed/school")
        assert unknown.status_code == 404
        assert "owns no entity 'school'" in unknown.json()["detail"]


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call()
    return response, time.monotonic() - started


async def test_a_long_poll_returns_as_soon_as_a_change_commits(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        answered: list[tuple[httpx.Response, float]] = []

        async def poll() -> None:
            answered.append(await timed(lambda: gias.get("/feed/school", params={"wait": 30})))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(poll)
                await anyio.sleep(0.3)
                assert answered == [], "the poll answered before anything changed"
                created = await gias.post("/schools", json=builders.school(), headers=API)
                assert created.status_code == 201
        response, waited = answered[0]
        assert [c["key"] for c in response.json()["changes"]] == ["100000"]
        assert 0.3 <= waited < 5

        quiet, waited = await timed(
            lambda: gias.get("/feed/school", params={"since": 1, "wait": 0.3})
        )
        assert quiet.json()["changes"] == []
        assert waited >= 0.3


async def test_a_change_signalled_before_the_reader_waits_still_wakes_it() -> None:
    notifier = FeedNotifier()
    notifier.bind(asyncio.get_running_loop())
    watched = notifier.watch()  # taken before the reader looks at the log
    notifier.changed()  # a commit lands after the reader looked, before it waits
    await anyio.lowlevel.checkpoint()
    with anyio.fail_after(1):
        await notifier.wait(watched, 30)
    assert not notifier.watch().is_set()


async def test_a_cursor_older_than_the_retained_log_is_gone(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        batch = [builders.school(f"10000{n}") for n in range(1, 4)]
        assert (await gias.post("/schools/batch", json=batch, headers=API)).is_success

        pruned = await gias.post("/admin/feed/prune", json={"keep": 1}, headers=ADMIN)
        assert pruned.json() == {"pruned": 2, "pruned_through": 2}
        for since in (0, 1):
            gone = await gias.get("/feed/school", params={"since": since})
            assert gone.status_code == 410
            assert "relist /records/school" in gone.json()["detail"]
        kept = await read_feed(gias, "school", since=2)
        assert [c["seq"] for c in kept["changes"]] == [3]
        again = await gias.post("/admin/feed/prune", json={"keep": 1}, headers=ADMIN)
        assert again.json() == {"pruned": 0, "pruned_through": 2}
        refused = await gias.post("/admin/feed/prune", json={"keep": -1}, headers=ADMIN)
        assert refused.status_code == 422


async def test_pruning_the_whole_log_never_reuses_a_seq(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        batch = [builders.school(f"10000{n}") for n in range(1, 4)]
        assert (await gias.post("/schools/batch", json=batch, headers=API)).is_success
        reader_at = (await read_feed(gias, "school"))["next"]
        assert reader_at == 3

        pruned = await gias.post("/admin/feed/prune", json={"keep": 0}, headers=ADMIN)
        assert pruned.json() == {"pruned": 3, "pruned_through": 3}
        # a relisting reader resumes from the head, which must not fall behind the prune
        assert (await gias.get("/records/school")).json()["head"] == 3

        assert (await gias.post("/schools", json=builders.school("100004"), headers=API)).is_success
        page = await read_feed(gias, "school", since=reader_at)
        assert [(c["seq"], c["key"]) for c in page["changes"]] == [(4, "100004")]


async def test_records_page_by_key_and_filter_by_updated_since(state_dir: Path) -> None:
    async with in_process_line(["gias"], state_dir) as line:
        gias = line["gias"]
        urns = [f"10000{n}" for n in range(5, 0, -1)]
        batch = [builders.school(urn) for urn in urns]
        assert (await gias.post("/schools/batch", json=batch, headers=API)).is_success

        pages = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            response = await gias.get("/records/school", params=params)
            assert response.status_code == 200, response.text
            pages.append(response.json())
            if pages[-1]["next_after"] is None:
                break
            params["after"] = pages[-1]["next_after"]
        assert [[r["urn"] for r in p["records"]] for p in pages] == [
            ["100001", "100002"],
            ["100003", "100004"],
            ["100005"],
        ]
        assert [p["next_after"] for p in pages] == ["100002", "100004", None]
        assert {p["head"] for p in pages} == {5}
        assert pages[0]["records"][0]["version"] == 1

        await gias.post("/admin/clock/advance", json={"by": "1h"}, headers=ADMIN)
        await gias.patch("/schools/100003", json={"status_code": "2"}, headers=API)
        # the same moment three ways, and the patch's own: a write at the moment a poll asked
        # from (after it, on the simulated clock) is the next poll's to read
        for since in (
            "2026-10-05T00:30:00Z",
            "2026-10-05T00:30:00",
            "2026-10-05T01:30:00+01:00",
            "2026-10-05T01:00:00Z",
        ):
            changed = await gias.get("/records/school", params={"updated_since": since})
            assert changed.status_code == 200, changed.text
            assert [r["urn"] for r in changed.json()["records"]] == ["100003"], since
        later = await gias.get("/records/school", params={"updated_since": "2026-10-05T01:00:01Z"})
        assert later.json()["records"] == []

        assert (await gias.get("/records/school", params={"limit": 0})).status_code == 422
        assert (await gias.get("/records/course")).status_code == 404
