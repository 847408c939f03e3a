"""The test plugin's PostgreSQL backend: a fresh database per service, dropped after the test."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from serviceline.runtime.db import make_engine
from serviceline.testing import (
    API,
    DATABASE_PREFIX,
    ROOT,
    DatabasesUnderTest,
    database_url,
    in_process_line,
    postgres_server,
    service_settings,
)
from tests import builders


@pytest.fixture
def postgres(pytestconfig: pytest.Config) -> Iterator[DatabasesUnderTest]:
    databases = DatabasesUnderTest(postgres_server(pytestconfig.getoption("postgres_server")))
    try:
        yield databases
    finally:
        databases.drop()


def server_databases(databases: DatabasesUnderTest) -> set[str]:
    assert databases.server is not None
    engine = make_engine(databases.server.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def test_each_service_gets_a_fresh_database_of_its_own_for_the_whole_test(
    postgres: DatabasesUnderTest, tmp_path: Path
) -> None:
    publish = postgres.url(tmp_path, "publish")
    assert postgres.url(tmp_path, "publish") == publish  # a restarted service finds its data
    others = {postgres.url(tmp_path, "find"), postgres.url(tmp_path / "second", "publish")}
    assert publish not in others
    assert len(others) == 2
    for url in (publish, *others):
        engine = make_engine(url)
        try:
            assert engine.dialect.name == "postgresql"
            assert inspect(engine).get_table_names() == []
        finally:
            engine.dispose()


def test_a_tests_databases_are_dropped_when_it_ends(
    postgres: DatabasesUnderTest, tmp_path: Path
) -> None:
    postgres.url(tmp_path, "gias")
    postgres.url(tmp_path, "publish")
    created = set(postgres.created.values())
    assert created <= server_databases(postgres)
    postgres.drop()
    assert not created & server_databases(postgres)


def test_databases_left_by_a_run_that_died_are_swept(
    postgres: DatabasesUnderTest, tmp_path: Path
) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    left_behind = f"{DATABASE_PREFIX}{int(ended.stdout)}_0_gias"
    postgres.execute(f'CREATE DATABASE "{left_behind}"')
    postgres.url(tmp_path, "gias")
    ours = set(postgres.created.values())
    postgres.sweep()
    present = server_databases(postgres)
    assert left_behind not in present
    assert ours <= present


@pytest.mark.anyio
async def test_a_service_keeps_its_records_in_the_database_the_plugin_gives_it(
    state_dir: Path,
) -> None:
    assert service_settings("gias", state_dir).database_url == database_url(state_dir, "gias")
    assert database_url(state_dir, "gias") != database_url(state_dir, "publish")
    async with in_process_line(["gias"], state_dir) as line:
        created = await line["gias"].post("/schools", json=builders.school(), headers=API)
        assert created.status_code == 201, created.text
    engine = make_engine(database_url(state_dir, "gias"))
    try:
        with engine.connect() as connection:
            urns = connection.execute(text("SELECT urn FROM gias_school")).scalars()
            assert list(urns) == ["100000"]
    finally:
        engine.dispose()


def test_an_unreachable_server_stops_the_run_rather_than_fall_back_to_sqlite() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--database",
            "postgresql",
            "--postgres-server",
            "postgresql://postgres@127.0.0.1:1/postgres",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/runtime/test_postgres.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout + run.stderr
    assert "--database postgresql" in run.stderr
