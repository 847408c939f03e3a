import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from serviceline.runtime.db import make_engine, readonly
from serviceline.runtime.sqlite_turns import TurnTakingConnection


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE log (writer TEXT)"))
    yield engine
    engine.dispose()


def turn_of(engine: Engine) -> threading.Lock:
    with engine.connect() as connection:
        driver = connection.connection.dbapi_connection
        assert isinstance(driver, TurnTakingConnection)
        return driver._turn


def writers(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT writer FROM log ORDER BY rowid")))


def test_a_second_writer_begins_when_the_first_commits_and_not_before(engine: Engine) -> None:
    first = engine.connect()
    first.begin()
    first.execute(text("INSERT INTO log VALUES ('first')"))
    assert turn_of(engine).locked()
    began = threading.Event()

    def second() -> None:
        with engine.begin() as connection:
            began.set()
            connection.execute(text("INSERT INTO log VALUES ('second')"))

    waiting = threading.Thread(target=second)
    waiting.start()
    assert not began.wait(0.2)
    first.commit()
    waiting.join(timeout=10)
    first.close()
    assert began.is_set()
    assert not turn_of(engine).locked()
    assert writers(engine) == ["first", "second"]


def test_a_rollback_or_a_failed_begin_ends_the_turn(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.begin()
        connection.execute(text("INSERT INTO log VALUES ('undone')"))
        connection.rollback()
    assert not turn_of(engine).locked()
    with pytest.raises(OperationalError), engine.begin() as connection:
        connection.execute(text("INSERT INTO nowhere VALUES (1)"))
    assert not turn_of(engine).locked()
    assert writers(engine) == []


def test_readers_take_no_turn_and_are_not_kept_waiting_by_a_writer(engine: Engine) -> None:
    with engine.begin() as writing:
        writing.execute(text("INSERT INTO log VALUES ('writer')"))
        with readonly(engine).connect() as reading:
            assert list(reading.scalars(text("SELECT writer FROM log"))) == []


def test_each_database_file_has_its_own_turns(engine: Engine, tmp_path: Path) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert turn_of(other) is not turn_of(engine)
        same = make_engine(f"sqlite:///{tmp_path / '.' / 'turns.db'}")
        assert turn_of(same) is turn_of(engine)
        same.dispose()
    finally:
        other.dispose()
