from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Field, Session, delete, update

from lines.becoming_a_teacher.topology import LINE
from serviceline.audit.checksum_routes import checksum_router
from serviceline.audit.checksums import (
    HashedSide,
    OwnerSide,
    RowHash,
    Span,
    bisect,
    checksums,
    cuts,
    quantiles,
    refresh,
    summed_here,
    sums,
)
from serviceline.consumer.tables import Copy, CopyTarget
from serviceline.model.topology import Edge, Entity, Mechanism, Topology
from serviceline.owner.feed import Owned
from serviceline.runtime.db import create_tables, make_engine, readonly, upsert
from serviceline.testing import API, database_url, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio


class Item(Owned, table=True):
    __tablename__ = "test_checksum_item"
    entity: ClassVar[str] = "item"
    key_field: ClassVar[str] = "code"
    code: str = Field(primary_key=True)
    label: str
    size: int | None = None


class ItemCopy(Copy, table=True):
    __tablename__ = "test_checksum_item_copy"
    ref: str = Field(primary_key=True)
    title: str
    size: int | None = None


EDGE = Edge(
    "owner",
    "consumer",
    "item",
    Mechanism.SNAPSHOT,
    None,
    {"code": "ref", "label": "title", "size": "size"},
)
TOPOLOGY = Topology((), (Entity("item", ("owner",), "code"),), (), (EDGE,), ())


@dataclass
class FakeCopier:
    edges: dict[str, Edge] = field(default_factory=lambda: {EDGE.name: EDGE})
    targets: dict[str, CopyTarget] = field(default_factory=lambda: {"item": CopyTarget(ItemCopy)})


@dataclass
class FakeKernel:
    """As much of a kernel as the checksum routes ask of it."""

    name: str
    engine: Engine
    topology: Topology = TOPOLOGY
    owned: dict[str, type[Owned]] = field(default_factory=lambda: {"item": Item})
    copier: FakeCopier = field(default_factory=FakeCopier)
    writers: anyio.Lock = field(default_factory=anyio.Lock)

    def session(self, *, writes: bool = True) -> Session:
        return Session(self.engine if writes else readonly(self.engine))


def client(name: str, engine: Engine) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(checksum_router)
    app.state.kernel = FakeKernel(name, engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


Values = tuple[str, int | None]
keys = st.text("0aZé~", min_size=1, max_size=5)
values = st.tuples(st.text("xy", max_size=3), st.none() | st.integers(-3, 3))
# how a row comes to be written: by the ORM (a handler, a local edit), a Core statement, or
# the copier's upsert; every way must leave its kept hash out of date
ways = st.sampled_from(["orm", "statement", "upsert"])


@st.composite
def drifted(draw: st.DrawFn) -> tuple[dict[str, Values], dict[str, Values]]:
    """Owner rows, and copies of them with random deletions, insertions and field changes."""
    owner = draw(st.dictionaries(keys, values, max_size=60))
    return owner, draw(rewritten(owner))


@st.composite
def rewritten(draw: st.DrawFn, rows: dict[str, Values]) -> dict[str, Values]:
    """`rows` with some of them deleted or changed, and a few added."""
    after = dict(rows)
    for key in rows:
        fate = draw(st.sampled_from(["same", "same", "same", "deleted", "changed"]))
        if fate == "deleted":
            del after[key]
        elif fate == "changed":
            after[key] = draw(values)
    added = draw(st.dictionaries(keys.filter(lambda k: k not in rows), values, max_size=10))
    return {**after, **added}


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """An owner's database and a consumer's, SQLite or PostgreSQL as the run asks."""
    owner, consumer = (make_engine(database_url(tmp_path, name)) for name in ("owner", "consumer"))
    for engine in (owner, consumer):
        create_tables(engine, [Item, ItemCopy, HashedSide, RowHash])
    yield owner, consumer
    owner.dispose()
    consumer.dispose()


def fill(
    owner: Engine, consumer: Engine, rows: dict[str, Values], copies: dict[str, Values]
) -> None:
    """Both sides holding exactly `rows` and `copies`, their kept hashes left as they were."""
    with Session(owner) as session:
        session.exec(delete(Item))
        session.add_all(Item(code=k, label=label, size=size) for k, (label, size) in rows.items())
        session.commit()
    with Session(consumer) as session:
        session.exec(delete(ItemCopy))
        session.add_all(
            ItemCopy(ref=k, title=label, size=size) for k, (label, size) in copies.items()
        )
        session.commit()


def rewrite(
    engine: Engine,
    model: type[Item] | type[ItemCopy],
    before: dict[str, Values],
    after: dict[str, Values],
    how: st.DataObject,
) -> None:
    """Turn the live rows `before` into `after`, each written one of the `ways`; a consumer's
    copy is sometimes flagged as its owner's deleted one, no longer live, rather than deleted."""
    key, label = ("code", "label") if model is Item else ("ref", "title")
    key_column = getattr(model, key)
    with Session(engine) as session:
        for gone in before.keys() - after.keys():
            flag = model is ItemCopy and how.draw(st.booleans())
            if flag:
                gone_at = datetime(2026, 1, 1, tzinfo=UTC)
                session.exec(
                    update(ItemCopy).where(key_column == gone).values(source_deleted_at=gone_at)
                )
            else:
                session.exec(delete(model).where(key_column == gone))
        for k, (text, size) in after.items():
            if before.get(k) == (text, size):
                continue
            values: dict[str, Any] = {key: k, label: text, "size": size}
            way = how.draw(ways)
            row = session.get(model, k)
            if way == "upsert":
                upsert(session, model, [model(**values).model_dump()], key)
            elif way == "statement" and row is not None:
                session.exec(
                    update(model).where(key_column == k).values({**values, **_live(model)})
                )
            elif row is None:
                session.add(model(**values))
            else:
                row.sqlmodel_update({**values, **_live(model)})
                session.add(row)
            session.flush()
        session.commit()


def _live(model: type[Item] | type[ItemCopy]) -> dict[str, Any]:
    return {"source_deleted_at": None} if model is ItemCopy else {}


async def expect_found(
    owner: Engine,
    consumer: Engine,
    rows: dict[str, Values],
    copies: dict[str, Values],
    buckets: int,
    threshold: int,
) -> None:
    """Bisection finds what comparing every row of both sides would find, and only that."""
    async with client("owner", owner) as o, client("consumer", consumer) as c:
        result = await bisect(o, c, EDGE, buckets=buckets, threshold=threshold)
    assert set(result.missing) == set(rows) - set(copies)
    assert set(result.extra) == set(copies) - set(rows)
    changed = {k for k in set(rows) & set(copies) if rows[k] != copies[k]}
    assert set(result.changed) == changed
    for key in changed:
        (label, size), (title, copied_size) = rows[key], copies[key]
        expected = {"title": (label, title), "size": (_text(size), _text(copied_size))}
        assert result.changed[key] == {f: v for f, v in expected.items() if v[0] != v[1]}


def _text(size: int | None) -> str | None:
    return None if size is None else str(size)


def test_quantiles_cut_sorted_keys_into_ranges_none_of_them_empty() -> None:
    assert quantiles(["a", "c", "e"]) == ["c", "e"]
    assert quantiles(["a", "a", "b", "b"]) == ["b"]
    assert quantiles(["a"]) == []


# the engines, and the hashes kept in them, outlive each example: every example begins with
# hashes of rows that are no longer there, or are there written anew
@given(data=drifted(), buckets=st.integers(2, 5), threshold=st.integers(1, 6), how=st.data())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_bisection_finds_exactly_what_a_full_comparison_finds_audit_after_audit(
    engines: tuple[Engine, Engine],
    data: tuple[dict[str, Values], dict[str, Values]],
    buckets: int,
    threshold: int,
    how: st.DataObject,
) -> None:
    owner, consumer = engines
    rows, copies = data
    fill(owner, consumer, rows, copies)
    anyio.run(expect_found, owner, consumer, rows, copies, buckets, threshold)

    written_rows, written_copies = how.draw(rewritten(rows)), how.draw(rewritten(copies))
    rewrite(owner, Item, rows, written_rows, how)
    rewrite(consumer, ItemCopy, copies, written_copies, how)
    anyio.run(expect_found, owner, consumer, written_rows, written_copies, buckets, threshold)


@given(
    rows=st.dictionaries(keys, values, max_size=60),
    bounds=st.tuples(st.none() | keys, st.none() | keys),
    buckets=st.integers(1, 8),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_database_cuts_and_sums_a_range_as_it_is_cut_and_summed_here(
    engines: tuple[Engine, Engine],
    rows: dict[str, Values],
    bounds: tuple[str | None, str | None],
    buckets: int,
) -> None:
    owner, consumer = engines
    fill(owner, consumer, rows, {})
    start, end = bounds
    span = Span(start, end if start is None or end is None or end > start else None)
    with Session(owner) as session:
        side_id, _ = refresh(OwnerSide(EDGE, Item), session, span)
        here = summed_here(session, side_id, span, buckets, None)
        splits = cuts(session, side_id, span, buckets) if buckets > 1 else []
        there = sums(session, side_id, span, splits)
    assert [bucket.view() for bucket in here] == [bucket.view() for bucket in there]
    assert sum(bucket.count for bucket in here) == sum(
        1
        for key in rows
        if (start is None or key >= start) and (span.end is None or key < span.end)
    )


async def test_matching_sides_cost_two_requests(engines: tuple[Engine, Engine]) -> None:
    owner, consumer = engines
    rows: dict[str, Values] = {f"{n:04d}": ("x", n) for n in range(500)}
    fill(owner, consumer, rows, rows)
    async with client("owner", owner) as o, client("consumer", consumer) as c:
        result = await bisect(o, c, EDGE)
        too_many = await o.get(f"/checksums/records/{EDGE.name}/rows")
    assert (result.keys, result.requests, result.rows_fetched) == (set(), 2, 0)
    assert too_many.status_code == 200
    assert len(too_many.json()["rows"]) == 500


def test_hashes_kept_for_another_projection_of_the_edge_are_made_again(
    engines: tuple[Engine, Engine],
) -> None:
    owner, _ = engines
    fill(owner, owner, {"a": ("x", 1), "b": ("y", 2)}, {})
    renamed = replace(EDGE, value_maps={"title": {"x": "renamed"}})
    [before] = checksums(OwnerSide(EDGE, Item), owner, None, None, 1)
    [after] = checksums(OwnerSide(renamed, Item), owner, None, None, 1)
    [again] = checksums(OwnerSide(EDGE, Item), owner, None, None, 1)
    assert before.count == after.count == 2
    assert after.checksum != before.checksum
    assert again.checksum == before.checksum


async def test_unordered_split_and_unknown_edge_are_refused(
    engines: tuple[Engine, Engine],
) -> None:
    owner, _ = engines
    async with client("owner", owner) as o:
        unordered = await o.get(f"/checksums/records/{EDGE.name}", params={"split": ["b", "a"]})
        unknown = await o.get("/checksums/records/nobody.item.owner")
        not_copied = await o.get("/checksums/copies/nobody.item.owner/rows")
    assert unordered.status_code == 422
    assert unordered.json()["detail"].startswith("split:")
    assert unknown.status_code == 404
    assert not_copied.status_code == 404


async def test_audit_of_gias_schools_in_publish_finds_the_changed_and_the_missing(
    state_dir: Path,
) -> None:
    edge = LINE.edge("gias.school.publish")
    async with in_process_line(["gias", "publish"], state_dir) as line:
        schools = [builders.school(f"1000{n:02d}", minimum_age=n) for n in range(30)]
        # a Welsh establishment is out of the edge's scope: never a difference
        schools.append(builders.school("400000", type_code="30", group_code="9"))
        r = await line["gias"].post("/schools/batch", json=schools, headers=API)
        assert r.is_success, r.text
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge(edge.name)
        clean = await bisect(line["gias"], line["publish"], edge, buckets=4, threshold=5)
        assert clean.keys == set()

        r = await line["gias"].patch("/schools/100007", json={"name": "Renamed"}, headers=API)
        assert r.is_success, r.text
        r = await line["gias"].post("/schools", json=builders.school("100099"), headers=API)
        assert r.is_success, r.text
        drift = await bisect(line["gias"], line["publish"], edge, buckets=4, threshold=5)

    assert set(drift.missing) == {"100099"}
    assert drift.extra == {}
    assert drift.changed == {"100007": {"name": ("Renamed", "The Aldgate School")}}
