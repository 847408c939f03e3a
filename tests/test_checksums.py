from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Field, Session, SQLModel, create_engine

from serviceline.checksum_routes import checksum_router
from serviceline.checksums import bisect, quantiles
from serviceline.copier import Copy, CopyTarget
from serviceline.feed import Owned
from serviceline.testing import API, in_process_line
from serviceline.topology import LINE, Edge, Mechanism, Topology
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
TOPOLOGY = Topology((), (), (), (EDGE,), ())


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

    def session(self) -> Session:
        return Session(self.engine)


def client(name: str, engine: Engine) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(checksum_router)
    app.state.kernel = FakeKernel(name, engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


def memory_engine() -> Engine:
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    SQLModel.metadata.create_all(engine, tables=[Item.__table__, ItemCopy.__table__])  # type: ignore[attr-defined]
    return engine


keys = st.text("0aZé~", min_size=1, max_size=5)
values = st.tuples(st.text("xy", max_size=3), st.none() | st.integers(-3, 3))


@st.composite
def drifted(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Owner rows, and copies of them with random deletions, insertions and field changes."""
    owner = draw(st.dictionaries(keys, values, max_size=60))
    copies = dict(owner)
    for key in owner:
        fate = draw(st.sampled_from(["same", "same", "same", "deleted", "changed"]))
        if fate == "deleted":
            del copies[key]
        elif fate == "changed":
            copies[key] = draw(values)
    inserted = draw(st.dictionaries(keys.filter(lambda k: k not in owner), values, max_size=10))
    return owner, {**copies, **inserted}


@pytest.fixture
def engines() -> Iterator[tuple[Engine, Engine]]:
    owner, consumer = memory_engine(), memory_engine()
    yield owner, consumer
    owner.dispose()
    consumer.dispose()


def fill(owner: Engine, consumer: Engine, rows: dict[str, Any], copies: dict[str, Any]) -> None:
    with Session(owner) as session:
        session.add_all(Item(code=k, label=label, size=size) for k, (label, size) in rows.items())
        session.commit()
    with Session(consumer) as session:
        session.add_all(
            ItemCopy(ref=k, title=label, size=size) for k, (label, size) in copies.items()
        )
        session.commit()


def test_quantiles_cut_sorted_keys_into_balanced_ranges() -> None:
    assert quantiles(["a", "b", "c", "d", "e", "f"], 3) == ["c", "e"]
    assert quantiles(["a"], 4) == []


@given(data=drifted(), buckets=st.integers(2, 5), threshold=st.integers(1, 6))
@settings(max_examples=60, deadline=None)
def test_bisection_finds_exactly_what_a_full_comparison_finds(
    data: tuple[dict[str, Any], dict[str, Any]], buckets: int, threshold: int
) -> None:
    rows, copies = data
    owner, consumer = memory_engine(), memory_engine()
    fill(owner, consumer, rows, copies)

    async def audit() -> None:
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

    anyio.run(audit)
    owner.dispose()
    consumer.dispose()


def _text(size: int | None) -> str | None:
    return None if size is None else str(size)


async def test_matching_sides_cost_two_requests(engines: tuple[Engine, Engine]) -> None:
    owner, consumer = engines
    rows = {f"{n:04d}": ("x", n) for n in range(500)}
    fill(owner, consumer, rows, rows)
    async with client("owner", owner) as o, client("consumer", consumer) as c:
        result = await bisect(o, c, EDGE)
        too_many = await o.get(f"/checksums/records/{EDGE.name}/rows")
    assert (result.keys, result.requests, result.rows_fetched) == (set(), 2, 0)
    assert too_many.status_code == 200
    assert len(too_many.json()["rows"]) == 500


async def test_unordered_split_and_unknown_edge_are_refused(
    engines: tuple[Engine, Engine],
) -> None:
    owner, _ = engines
    async with client("owner", owner) as o:
        unordered = await o.get(f"/checksums/records/{EDGE.name}", params={"split": ["b", "a"]})
        unknown = await o.get("/checksums/records/nobody.item->owner")
        not_copied = await o.get("/checksums/copies/nobody.item->owner/rows")
    assert unordered.status_code == 422
    assert unordered.json()["detail"].startswith("split:")
    assert unknown.status_code == 404
    assert not_copied.status_code == 404


async def test_audit_of_gias_schools_in_publish_finds_the_changed_and_the_missing(
    state_dir: Path,
) -> None:
    edge = LINE.edge("gias.school->publish")
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
