"""What reads of an owner last answered, for as long as the owner's change log says so.

A consumer that polls an owner's API is told, run after run, mostly what it was told before.
The simulation may skip a request whose answer it knows: which changes an answer depends on is
each memory's to say (`KnownFromLog`). An answer about one record, such as a teacher's by TRN,
depends only on that record (`KnownRecords`); a reader that walks an API declares its own.

An answer holds while the owner's change log, read from the owner's kernel feed, has no such
change since the answer was read; a run then takes it with what asking cost, instead of asking.
Only while the line's control vouches for the owner's head: with a fault listed, or nothing
vouched, every request is made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from serviceline.runtime.upstream import Upstream, UpstreamError, metered

FEED_LIMIT = 5000


def bump(latest: dict[str, int], key: str, seq: int) -> None:
    latest[key] = max(latest.get(key, -1), seq)


@dataclass
class KnownFromLog(ABC):
    """Answers as last read, kept up with the owner's log; what an answer depends on is the
    subclass's to say."""

    # the owner's head vouched for the run under way; None: nothing known, every request made
    head: int | None = None
    _read_through: int | None = None

    async def catch_up(self, upstream: Upstream, entities: Sequence[str]) -> None:
        """Read the owner's log from where it was read to the vouched head."""
        head = self.head
        if head is None:
            return
        if self._read_through is None or not self._holds_answers():
            self._forget(head)
            return
        if head <= self._read_through:
            return
        try:
            # the simulation's own look at the log: no request of the run it serves
            with metered():
                for entity in entities:
                    await self._read_log(upstream, entity, self._read_through)
        except UpstreamError:
            self._forget(head)  # pruned past the answers, say: they are not known to hold
            return
        self._read_through = head

    def _forget(self, head: int) -> None:
        self._clear()
        self._read_through = head

    async def _read_log(self, upstream: Upstream, entity: str, since: int) -> None:
        while True:
            page = await upstream.get_json(f"/feed/{entity}", {"since": since, "limit": FEED_LIMIT})
            for change in page["changes"]:
                self._touch(entity, change)
            since = page["next"]
            if not page["has_more"]:
                return

    @abstractmethod
    def _holds_answers(self) -> bool: ...

    @abstractmethod
    def _clear(self) -> None: ...

    @abstractmethod
    def _touch(self, entity: str, change: Mapping[str, Any]) -> None: ...


@dataclass
class KnownRecords(KnownFromLog):
    """One record's answer by key, such as a teacher's by TRN, as last read."""

    # key -> the head its answer was read at, and the answer
    _answers: dict[str, tuple[int, Any]] = field(default_factory=dict)
    # key -> the seq of the latest change to it
    _touched: dict[str, int] = field(default_factory=dict)

    async def asked(self, key: str, ask: Callable[[], Awaitable[Any]]) -> Any:
        """The record's answer where it is known to hold, else `ask`'s, kept."""
        remembered = self._answers.get(key)
        if self.head is not None and remembered is not None:
            read_at, answer = remembered
            if self._touched.get(key, -1) <= read_at:
                return answer
        answer = await ask()
        if self.head is None:
            self._answers.pop(key, None)
        else:
            self._answers[key] = (self.head, answer)
        return answer

    def _holds_answers(self) -> bool:
        return bool(self._answers)

    def _clear(self) -> None:
        self._answers.clear()
        self._touched.clear()

    def _touch(self, entity: str, change: Mapping[str, Any]) -> None:
        bump(self._touched, str(change["key"]), int(change["seq"]))
