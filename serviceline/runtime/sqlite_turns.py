"""SQLite writers of one process take turns on a lock of the process's own, file by file.

SQLite lets one writer in at a time. A second that asks while the first holds the lock is left
to SQLite's busy handler, which sleeps 1, 2, 5, 10 ms and more between tries: two followers of
one consumer, or a copy beside an owner's write, spent 9 ms a change waiting for a lock that
had been free for most of that time. A writer that waits here instead is woken the moment the
one before it ends. Writers in other processes still meet SQLite's own lock and busy handler.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_turns: dict[str, threading.Lock] = {}
_turns_lock = threading.Lock()


def _turn_for(database: str) -> threading.Lock:
    """The lock of one database file; a database in memory is its connection's alone."""
    if database == ":memory:" or database.startswith("file:") or not database:
        return threading.Lock()
    path = os.path.realpath(database)
    with _turns_lock:
        return _turns.setdefault(path, threading.Lock())


class TurnTakingConnection(sqlite3.Connection):
    """A DB-API connection (`sqlite3.connect(factory=...)`) whose write transactions take turns."""

    def __init__(self, database: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._turn = _turn_for(os.fspath(database))
        self._patience = float(kwargs.get("timeout", 5.0))
        self._holding = False

    def take_turn(self) -> None:
        """Wait for the writer before this one in the process to end; BEGIN IMMEDIATE follows."""
        # past its patience it goes on to SQLite's lock, which times out as it would have
        self._holding = self._turn.acquire(timeout=self._patience)

    def commit(self) -> None:
        with self._ending_turn():
            super().commit()

    def rollback(self) -> None:
        with self._ending_turn():
            super().rollback()

    def close(self) -> None:
        with self._ending_turn():
            super().close()

    @contextmanager
    def _ending_turn(self) -> Iterator[None]:
        """What ends the transaction ends the turn, even when it fails."""
        try:
            yield
        finally:
            self.end_turn()

    def end_turn(self) -> None:
        if self._holding:
            self._holding = False
            self._turn.release()
