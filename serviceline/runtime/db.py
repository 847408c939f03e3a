"""Engines, sessions and the kernel's own tables, present in every service's database."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    Engine,
    Insert,
    Table,
    event,
    func,
    insert,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.schema import CreateIndex
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, Session, SQLModel, create_engine

from serviceline.runtime.sqlite_turns import TurnTakingConnection


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every time in serviceline is UTC-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_field(*, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, index=index)


def json_field() -> Any:
    return Field(default_factory=list, sa_type=JSON, nullable=False)


def new_stamp() -> int:
    return secrets.randbits(63)


def stamp_field() -> Any:
    """A number the database gives the row anew on every insert and update, however written."""
    return Field(
        default=None,
        sa_type=BigInteger,
        nullable=False,
        exclude=True,
        sa_column_kwargs={"default": new_stamp, "onupdate": new_stamp},
    )


class KernelState(SQLModel, table=True):
    """Small facts a service keeps about itself: the clock, how far the feed was pruned."""

    __tablename__ = "kernel_state"
    name: str = Field(primary_key=True)
    value: str


class JobRun(SQLModel, table=True):
    """When each scheduled job last ran on the simulated clock."""

    __tablename__ = "kernel_job"
    name: str = Field(primary_key=True)
    last_run_at: datetime | None = utc_field()
    last_success_at: datetime | None = utc_field()
    last_error: str | None = None


# an execution option: a transaction that may write takes the database's write lock first
WRITES = "serviceline_writes"
# PostgreSQL's advisory lock that an owner's writers take turns on
WRITERS_LOCK = 7301


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (the change log's records, the applied log's lists) read and written by orjson:
# a feed page of 500 records spent more time in the standard library's json than in its query
JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": TurnTakingConnection,
            },
            pool_size=10,
            **JSON_CODEC,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, **JSON_CODEC)
    event.listen(engine, "begin", _postgresql_begin)
    return engine


@dataclass
class WriteMark:
    """A mark that moves with every statement writing this database's data, bookkeeping aside:
    two equal marks say nothing was written between them, without reading the data."""

    # tables whose writes record what the service did, not what it holds
    bookkeeping: frozenset[str]
    # a restarted service counts from zero again: its marks must not match the old ones
    boot: str = field(default_factory=lambda: secrets.token_hex(4))
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bind(self, engine: Engine) -> None:
        event.listen(engine, "after_cursor_execute", self._counted)

    @property
    def mark(self) -> str:
        return f"{self.boot}.{self.count}"

    def _counted(
        self,
        _connection: Connection,
        _cursor: Any,
        _statement: str,
        _parameters: Any,
        context: DefaultExecutionContext | None,
        _executemany: bool,
    ) -> None:
        if context is None or not (context.isinsert or context.isupdate or context.isdelete):
            return
        compiled = context.compiled
        table = getattr(compiled.statement, "table", None) if compiled is not None else None
        if table is not None and table.name in self.bookkeeping:
            return
        with self._lock:
            self.count += 1


def readonly(engine: Engine) -> Engine:
    """The engine for transactions that only read: they take no write lock, so never wait."""
    return engine.execution_options(**{WRITES: False})


def _sqlite_pragmas(connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # the driver would begin only before the first INSERT or UPDATE, after the reads that
    # decided it: _sqlite_begin begins every transaction itself instead
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """A writer holds SQLite's write lock from its first read: what it read cannot change."""
    if not connection.get_execution_options().get(WRITES, True):
        connection.exec_driver_sql("BEGIN")
        return
    driver = connection.connection.dbapi_connection
    assert isinstance(driver, TurnTakingConnection), driver
    driver.take_turn()
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        driver.end_turn()
        raise


def _postgresql_begin(connection: Connection) -> None:
    """Writers take turns from their first read, so a version read is the one they replace."""
    if connection.get_execution_options().get(WRITES, True):
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})")


def create_tables(engine: Engine, tables: Iterable[type[SQLModel]]) -> None:
    kernel = [KernelState, JobRun]
    wanted = [model.__table__ for model in [*kernel, *tables]]  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(engine, tables=wanted)
    _add_missing_indexes(engine, wanted)
    _rename_edges(engine, wanted)


def _add_missing_indexes(engine: Engine, tables: Iterable[Table]) -> None:
    """create_all leaves a table that exists alone: a state folder of before gets new indexes.
    The database checks for each (SQLAlchemy's check reflects no index on an expression)."""
    with engine.begin() as connection:
        for table in tables:
            for index in table.indexes:
                connection.execute(CreateIndex(index, if_not_exists=True))


def _rename_edges(engine: Engine, tables: Iterable[Table]) -> None:
    """Edges were once named `owner.entity->consumer`: a state folder of then keeps its cursors."""
    with engine.begin() as connection:
        for table in tables:
            column = table.c.get(
                "edge", table.c.get("name") if table.name == "kernel_job" else None
            )
            if column is not None:
                connection.execute(
                    update(table)
                    .where(column.contains("->"))
                    .values({column.name: func.replace(column, "->", ".")})
                )


def read_state(session: Session, name: str) -> str | None:
    row = session.get(KernelState, name)
    return None if row is None else row.value


def write_state(session: Session, name: str, value: str) -> None:
    row = session.get(KernelState, name)
    if row is None:
        session.add(KernelState(name=name, value=value))
    else:
        row.value = value
    session.flush()


def upsert(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    key: str | tuple[str, ...],
) -> None:
    """Insert or replace many rows, `key` naming the column(s) of a unique index."""
    if not rows:
        return
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    keys = [key] if isinstance(key, str) else list(key)
    columns = [name for name in rows[0] if name not in keys]
    # a column given anew on every update (a stamp) is, on an upsert's update too
    columns += [c.name for c in table.columns if c.onupdate is not None and c.name not in rows[0]]
    statement: Insert
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        statement = pg.on_conflict_do_update(
            index_elements=keys, set_={c: pg.excluded[c] for c in columns}
        )
    elif dialect == "sqlite":
        lite = sqlite.insert(table)
        statement = lite.on_conflict_do_update(
            index_elements=keys, set_={c: lite.excluded[c] for c in columns}
        )
    else:
        statement = insert(table)
    # executemany: one statement made for all the rows, where a VALUES list is made per chunk
    session.execute(statement, rows)
    session.flush()


Keyed = TypeVar("Keyed")
# keys in one `IN (...)`: far inside SQLite's bound-parameter limit, and a plan either engine reuses
IN_CHUNK = 500


def in_chunks(keys: Sequence[Keyed]) -> Iterator[Sequence[Keyed]]:
    """`keys` in slices small enough for one `IN (...)` each."""
    for start in range(0, len(keys), IN_CHUNK):
        yield keys[start : start + IN_CHUNK]
