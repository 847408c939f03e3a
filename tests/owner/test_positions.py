"""Positions kept from the change log give every page the very rows OFFSET gives, as rows move."""

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from lines.becoming_a_teacher.stubs.gias.models import School
from serviceline.owner.feed import ChangeLog, attach, prune
from serviceline.owner.positions import Positions, positions_for
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import create_tables, make_engine, readonly
from serviceline.runtime.settings import CLOCK_START, ClockMode
from serviceline.testing import database_url
from tests import builders

AREAS = ("201", "202", "203")


@pytest.fixture
def engine(state_dir: Path) -> Iterator[Engine]:
    engine = make_engine(database_url(state_dir, "owner"))
    create_tables(engine, [ChangeLog, School])
    yield engine
    engine.dispose()


def offset_page(
    engine: Engine, start: int, count: int, since: datetime | None, area: str | None
) -> tuple[int, list[str]]:
    """The listing as the database pages it: ORDER BY updated_at, key OFFSET … LIMIT …."""
    conditions = []
    if since is not None:
        conditions.append(col(School.updated_at) > since)
    if area is not None:
        conditions.append(col(School.la_code) == area)
    with Session(engine) as session:
        total = session.exec(select(func.count()).select_from(School).where(*conditions)).one()
        keys = session.exec(
            select(School.urn)
            .where(*conditions)
            .order_by(col(School.updated_at), col(School.urn))
            .offset(start)
            .limit(count)
        ).all()
    return total, list(keys)


def kept_page(
    positions: Positions[School],
    engine: Engine,
    start: int,
    count: int,
    since: datetime | None,
    area: str | None,
) -> tuple[int, list[str]]:
    found = positions.page(engine, start, count, updated_since=since, part=area)
    assert found is not None
    total, rows = found
    return total, [row.urn for row in rows]


def assert_every_page_alike(
    positions: Positions[School], engine: Engine, since: datetime | None, area: str | None
) -> None:
    for per_page in (1, 3, 7):
        total, _ = offset_page(engine, 0, per_page, since, area)
        for start in range(0, total + per_page, per_page):
            kept = kept_page(positions, engine, start, per_page, since, area)
            assert kept == offset_page(engine, start, per_page, since, area), (start, per_page)


class Owner:
    """Writes schools as an owner does: each write logged, on a clock moved by hand."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)

    def write(self, urn: str, **changes: str) -> None:
        with attach(Session(self.engine), self.clock, None) as session:
            school = session.get(School, urn)
            if school is None:
                school = School.model_validate(builders.school(urn, **changes))
            for name, value in changes.items():
                setattr(school, name, value)
            session.add(school)
            session.commit()

    def delete(self, urn: str) -> None:
        with attach(Session(self.engine), self.clock, None) as session:
            session.delete(session.get_one(School, urn))
            session.commit()

    def later(self, minutes: int) -> None:
        self.clock.set(self.clock.now() + timedelta(minutes=minutes))


def test_a_row_edited_between_two_pages_moves_as_it_does_under_offset(engine: Engine) -> None:
    owner = Owner(engine)
    for n in range(6):
        owner.write(f"10000{n}")
        owner.later(1)
    positions = positions_for(engine, School)
    first = kept_page(positions, engine, 0, 3, None, None)
    assert first == (6, ["100000", "100001", "100002"])

    owner.write("100000", name="Renamed")  # changed last: it moves to the end
    second = kept_page(positions, engine, 3, 3, None, None)
    assert second == offset_page(engine, 3, 3, None, None)
    # read twice, while 100003 slid back onto the page already read
    assert second == (6, ["100004", "100005", "100000"])
    assert kept_page(positions, engine, 0, 3, None, None)[1] == ["100001", "100002", "100003"]


def test_every_page_is_what_offset_gives_through_random_writes(engine: Engine) -> None:
    owner = Owner(engine)
    rng = random.Random(13)
    urns = [f"1{n:05d}" for n in range(40)]
    for urn in urns:
        owner.write(urn, la_code=rng.choice(AREAS))
        if rng.random() < 0.3:  # many records share a time: the key orders them
            owner.later(1)
    positions = positions_for(engine, School, "la_code")
    assert positions_for(engine, School, "la_code") is positions
    for round_ in range(25):
        for _ in range(rng.randrange(1, 6)):
            urn = rng.choice(urns)
            move = rng.random()
            if move < 0.5:
                owner.write(urn, name=f"Renamed {round_}")
            elif move < 0.7:
                owner.write(urn, la_code=rng.choice(AREAS))
            else:
                with Session(engine) as session:
                    present = session.get(School, urn) is not None
                owner.delete(urn) if present else owner.write(urn, la_code=rng.choice(AREAS))
            if rng.random() < 0.5:
                owner.later(rng.randrange(1, 30))
        if round_ % 8 == 7:
            # the log's oldest changes go: positions behind what is left relist the table
            with Session(engine) as session:
                prune(session, keep=2)
                session.commit()
        since = rng.choice([None, CLOCK_START, owner.clock.now() - timedelta(minutes=20)])
        area = rng.choice([None, *AREAS])
        assert_every_page_alike(positions, engine, since, area)


def test_a_write_the_change_log_never_saw_is_refused_and_then_relisted(engine: Engine) -> None:
    owner = Owner(engine)
    for n in range(3):
        owner.write(f"10000{n}")
    positions = positions_for(engine, School)
    assert kept_page(positions, engine, 0, 3, None, None)[0] == 3
    with Session(engine) as session:  # no clock: nothing logged
        session.delete(session.get_one(School, "100001"))
        session.commit()
    assert positions.page(engine, 0, 3) is None
    assert kept_page(positions, engine, 0, 3, None, None) == (2, ["100000", "100002"])
    with Session(engine) as session:
        moved = session.get_one(School, "100000")
        moved.updated_at = CLOCK_START + timedelta(hours=1)
        session.add(moved)
        session.commit()
    assert positions.page(engine, 0, 3) is None
    assert kept_page(positions, engine, 0, 3, None, None) == (2, ["100002", "100000"])


def test_a_session_is_read_in_unless_its_snapshot_is_older_than_the_positions(
    engine: Engine,
) -> None:
    owner = Owner(engine)
    for n in range(4):
        owner.write(f"10000{n}")
        owner.later(1)
    positions = positions_for(engine, School)
    with Session(readonly(engine)) as early:
        assert early.get(School, "100000") is not None  # its snapshot begins here
        owner.write("100000", name="Renamed")  # moves to the end
        # read elsewhere first, the positions are newer than the early snapshot
        assert kept_page(positions, engine, 0, 4, None, None)[1][-1] == "100000"
        found = positions.page(engine, 0, 2, session=early)
        assert found is not None
        assert [row.urn for row in found[1]] == ["100001", "100002"]
        assert not any(row in early for row in found[1])  # read in a snapshot of its own
    with Session(readonly(engine)) as late:
        found = positions.page(engine, 2, 2, session=late)
        assert found is not None
        assert [row.urn for row in found[1]] == ["100003", "100000"]
        # SQLite's read transaction is a snapshot, read in; PostgreSQL's reads its own
        sqlite = engine.dialect.name == "sqlite"
        assert all((row in late) is sqlite for row in found[1])
        assert (found[0], [row.urn for row in found[1]]) == offset_page(engine, 2, 2, None, None)
