"""What reads of an owner last answered, for as long as the owner's change log says so.

Apply's sync lists every provider changed in the last two hours, every ten minutes, and reads
each one's courses and their locations again: most of what a run asks, the run before it was
told. The simulation may skip a request whose answer it knows, by what Publish's routes read:
a provider's course list depends only on its courses; a course's locations only on that course
(its state, study mode, code and site codes) and on the provider's sites its site codes name.
Which codes those are the API does not say, and a site added with a code no site held when the
answer was read may be one, so a change to any of the provider's sites counts. Likewise an
answer about one record, such as DQT's teacher by TRN, depends only on that record.

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

from serviceline.consumer.readers import Located, Walked
from serviceline.runtime.upstream import Upstream, UpstreamError, metered

FEED_LIMIT = 5000


def _bump(latest: dict[str, int], key: str, seq: int) -> None:
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
        _bump(self._touched, str(change["key"]), int(change["seq"]))


@dataclass
class KnownSubtrees(KnownFromLog):
    """Course lists and locations as last read, and what the owner's log touched since."""

    # provider -> the head its course list was read at, and that page
    _listings: dict[str, tuple[int, Walked]] = field(default_factory=dict)
    # course -> the head its locations were read at, and them
    _locations: dict[str, tuple[int, Located]] = field(default_factory=dict)
    # the seq of the latest change to any course of a provider, to one course, to any site of a
    # provider
    _courses_of: dict[str, int] = field(default_factory=dict)
    _course: dict[str, int] = field(default_factory=dict)
    _sites_of: dict[str, int] = field(default_factory=dict)
    # (entity, key) -> provider: a deletion is logged without its record
    _providers_of: dict[tuple[str, str], str] = field(default_factory=dict)

    def listing(self, provider: str) -> Walked | None:
        """What asking for the provider's courses now would return, where that is known."""
        remembered = self._listings.get(provider)
        if self.head is None or remembered is None:
            return None
        read_at, walked = remembered
        return walked if self._courses_of.get(provider, -1) <= read_at else None

    def locations(self, provider: str, course: str) -> Located | None:
        """What asking for the course's locations now would return, where that is known."""
        remembered = self._locations.get(course)
        if self.head is None or remembered is None:
            return None
        read_at, located = remembered
        touched = max(self._course.get(course, -1), self._sites_of.get(provider, -1))
        return located if touched <= read_at else None

    def remember_listing(self, provider: str, walked: Walked) -> None:
        """A course list that named all the provider's courses: only then is a deleted one on it."""
        if self.head is None:
            self._listings.pop(provider, None)
            return
        self._listings[provider] = (self.head, walked)
        for record in walked.page.records:
            self._providers_of[("course", record.key)] = provider

    def remember_locations(self, provider: str, course: str, located: Located) -> None:
        if self.head is None:
            self._locations.pop(course, None)
            return
        self._locations[course] = (self.head, located)
        for record in located.records:
            self._providers_of[("site", record.key)] = provider

    def _holds_answers(self) -> bool:
        return bool(self._listings or self._locations)

    def _clear(self) -> None:
        self._listings.clear()
        self._locations.clear()
        self._courses_of.clear()
        self._course.clear()
        self._sites_of.clear()

    def _touch(self, entity: str, change: Mapping[str, Any]) -> None:
        key, seq, record = str(change["key"]), int(change["seq"]), change["record"]
        if entity == "provider":
            # no answer shows a provider's own fields; one gone is refused every question
            if record is None:
                _bump(self._courses_of, key, seq)
                _bump(self._sites_of, key, seq)
            return
        if entity == "course":
            _bump(self._course, key, seq)
        provider = record.get("provider_code") if record is not None else None
        provider = provider or self._providers_of.get((entity, key))
        # a deleted course or site no remembered answer held changes none of them: one that
        # counted when an answer was read is on it, one made since was logged with its record
        if provider is None:
            return
        self._providers_of[(entity, key)] = provider
        _bump(self._courses_of if entity == "course" else self._sites_of, provider, seq)
