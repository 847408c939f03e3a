"""A line's model: services, entities, relationships, copy edges, command paths and checks."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from croniter import croniter

from serviceline.runtime.clock import parse_duration

if TYPE_CHECKING:
    from serviceline.consumer.known_walks import KnownFromLog
    from serviceline.consumer.readers import ReadContext, SourceReader

# Sidekiq retries a failed job 25 times unless told otherwise; Register's ApplicationJob retries
# 10 attempts 3 s apart first (ActiveJob's retry_on), then leaves the error to Sidekiq's retries
SIDEKIQ_RETRIES = 25


class Kind(StrEnum):
    SERVICE = "service"
    THIRD_PARTY = "third_party"
    RECORD_SYSTEM = "record_system"


# the heading over each kind of service in a line's picture, unless the line names its own
GROUP_TITLES = {
    Kind.SERVICE: "Services",
    Kind.THIRD_PARTY: "Third parties",
    Kind.RECORD_SYSTEM: "Record systems",
}


class Mechanism(StrEnum):
    FEED = "feed"
    UPDATED_SINCE = "updated_since"
    SNAPSHOT = "snapshot"
    EVENT = "event"


@dataclass(frozen=True, kw_only=True)
class Reader:
    """One of an owner's APIs an edge reads through: the kernel's own, or one its line declares."""

    name: str
    description: str
    # how it can be read: only the kernel API keeps a change feed; a whole file or one key at a
    # time can only be listed in full
    mechanisms: frozenset[Mechanism]
    # a consumer's reader of it; None only for the kernel's own API, which the kernel reads itself
    opens: Callable[[ReadContext], SourceReader] | None = None
    # its records carry the owner's own field names: a what-if can read the same records from the
    # owner's change feed instead, as if the owner had built one beside the API
    feed_alike: bool = False
    # it asks the owner one key at a time for the keys the consumer wants: only those are the
    # consumer's to have, and no checksum over every record can stand in for asking
    by_key: bool = False
    # it reads the file the owner publishes each day: a run on another day reads another file
    daily: bool = False
    # what the simulation may keep of its answers between runs, kept up with the owner's log
    remembers: Callable[[], KnownFromLog] | None = None


KERNEL_READER = Reader(
    name="kernel",
    description="/feed/{entity} and /records/{entity}, served by every owner",
    mechanisms=frozenset({Mechanism.FEED, Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
)


class Policy(StrEnum):
    OWNER_WINS = "owner_wins"
    LOCAL_WINS = "local_wins"


# the uvicorn factory of a line's service process: it builds the service the environment names
SERVICE_FACTORY = "serviceline.runtime.serve:create_app"


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    kind: Kind
    port: int
    factory: str = SERVICE_FACTORY


@dataclass(frozen=True)
class Entity:
    name: str
    owners: tuple[str, ...]
    key: str
    description: str = ""
    # about a person: every route serving it needs a credential
    personal: bool = False
    # its owner logs every change to it in the kernel's change feed (a fixed list does not)
    change_feed: bool = True


@dataclass(frozen=True)
class Relationship:
    name: str
    services: tuple[str, ...]
    within_entity: bool = False


@dataclass(frozen=True)
class Scope:
    """Which owner records an edge copies: every `include` field in its values, no `exclude` hit."""

    include: Mapping[str, frozenset[str]] = field(default_factory=dict)
    exclude: Mapping[str, frozenset[str]] = field(default_factory=dict)
    description: str = ""

    def admits(self, record: Mapping[str, Any]) -> bool:
        for name, values in self.include.items():
            if str(record.get(name)) not in values:
                return False
        return all(str(record.get(name)) not in values for name, values in self.exclude.items())


EVERYTHING = Scope(description="every record")


@dataclass(frozen=True)
class Edge:
    """One copy: the consumer keeps `entity` from `owner`, read on `schedule` (cron, sim clock)."""

    owner: str
    consumer: str
    entity: str
    mechanism: Mechanism
    schedule: str | None  # cron on the simulated clock; None: the consumer's own events drive it
    mapping: Mapping[str, str]
    reader: Reader = KERNEL_READER
    scope: Scope = EVERYTHING
    value_maps: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    policy: Policy = Policy.OWNER_WINS
    # the consumer columns its users may change on their copy; what the next sync does to such a
    # change is the edge's policy
    editable: frozenset[str] = frozenset()
    overlap: timedelta = timedelta(0)
    full_sync_schedule: str | None = None
    keep_referenced: bool = False
    # the field of the reader's records that holds the owner's key, when not the entity's key
    source_key: str | None = None
    description: str = ""
    # how often a failed run is retried with Sidekiq's back-off before it waits for its schedule:
    # Sidekiq's default, unless the real job says otherwise
    retries: int = SIDEKIQ_RETRIES
    # edges into one consumer that name the same walk are read by one walk of their owner's API
    # at each moment of their schedule, as one real job reads several entities
    walk: str | None = None
    # the consumer follows its owner's change feed continuously (long-poll) instead of polling
    # it on a schedule: a what-if (`feed@follow`); such an edge has no schedule of its own
    follow: bool = False

    def __post_init__(self) -> None:
        if any("." in part for part in (self.owner, self.entity, self.consumer)):
            raise ValueError(f"{self.name}: a service or entity name holds a dot")
        strays = self.editable - set(self.mapping.values())
        if strays:
            raise ValueError(f"{self.name}: editable {sorted(strays)} are not copied columns")
        if self.key_field in self.editable:
            raise ValueError(f"{self.name}: the key {self.key_field!r} cannot be edited locally")
        if self.follow and (
            self.mechanism is not Mechanism.FEED or self.reader is not KERNEL_READER
        ):
            raise ValueError(f"{self.name}: only the owner's change feed can be followed")

    @property
    def cadence(self) -> str:
        """When the edge reads its owner, as people say it: its cron, or how else."""
        if self.follow:
            return "follows the feed"
        return self.schedule or "on the consumer's events"

    @property
    def name(self) -> str:
        """owner.entity.consumer: no name of the line holds a dot, and a shell takes it as is."""
        return f"{self.owner}.{self.entity}.{self.consumer}"

    @property
    def key_field(self) -> str:
        """The consumer's column holding the owner's key: the first mapped field."""
        return next(iter(self.mapping.values()))

    def translate(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The owner's record as the consumer stores it: renamed and value-mapped.

        A dotted source (`candidate.first_name`) reads into nested objects, as JSON APIs nest.
        """
        copied: dict[str, Any] = {}
        for source, target in self.mapping.items():
            value = lookup(record, source)
            values = self.value_maps.get(target)
            if values is not None and value in values:
                value = values[value]
            copied[target] = value
        return copied


def edge_name(spelling: str) -> str:
    """An edge's name (or glob) as written: `owner.entity.consumer`, or the older `...->consumer`.

    `->` is a shell's redirection, so the dotted spelling is the one printed everywhere.
    """
    return spelling.strip().replace("->", ".")


def lookup(record: Mapping[str, Any], path: str) -> Any:
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class CommandPath:
    """A real write from one service into another's API: a command to the owner, not a copy."""

    caller: str
    target: str
    api: str
    description: str


@dataclass(frozen=True)
class Listing:
    """A service's list of records, read page by page with `after` and `limit`."""

    service: str
    path: str
    # the record field whose value, from a page's last record, is the next page's `after`;
    # None: the service answers every record at once
    after: str | None = None
    # the answer's field holding the page, the kernel's envelope with `next_after` beside it;
    # None: the answer is the page, and a short page the last
    items: str | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"{self.service}: listing path {self.path!r} does not start with /")
        if self.after is not None and self.items is not None:
            raise ValueError(
                f"{self.service} {self.path}: give `after` (a list paged by its last key) or "
                "`items` (the kernel's envelope, which says `next_after`), not both"
            )


@dataclass(frozen=True)
class Lookup:
    """A service's records read one key at a time, for the keys the other side holds."""

    service: str
    path: str  # "{key}" stands for the key asked; a 404 says the service holds none

    def __post_init__(self) -> None:
        if "{key}" not in self.path:
            raise ValueError(f"{self.service}: lookup path {self.path!r} names no {{key}}")


class Normal(StrEnum):
    """How a side's value is read before it is compared, so equal things compare equal."""

    FIRST_WORD = "first_word"  # one service keeps every given name, the other the first
    SORTED = "sorted"  # a list whose order says nothing


@dataclass(frozen=True)
class Side:
    """One service's records in a check: where they are read, their key, the fields compared."""

    reading: Listing | Lookup
    # the record fields whose values, joined by ":", are the key the two sides are matched on;
    # none for a lookup, whose records are keyed by the key asked
    key: tuple[str, ...] = ()
    # the check's field -> the record's field holding it (dotted for a nested one)
    fields: Mapping[str, str] = field(default_factory=dict)
    normalise: Mapping[str, Normal] = field(default_factory=dict)
    # only records with this field set take part
    where: str | None = None
    # the record field that names a record in findings, when several may share the matched key
    # (sites naming the same school): only on the side copied from the other
    named_by: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.reading, Listing) and not self.key:
            raise ValueError(
                f"{self.service} {self.reading.path}: a listed side's key names no field"
            )
        if isinstance(self.reading, Lookup) and self.key:
            raise ValueError(
                f"{self.service}: a lookup's records are keyed by the key asked; key {self.key} "
                "would say otherwise"
            )
        strays = sorted(set(self.normalise) - set(self.fields))
        if strays:
            raise ValueError(f"{self.service}: normalise names {strays}, which are not its fields")

    @property
    def service(self) -> str:
        return self.reading.service


@dataclass(frozen=True)
class RecordCheck:
    """Two services' records of one entity compared key by key: a drift report's comparison.

    Without `copied_from` both services create them: a key one holds alone, or holds otherwise,
    conflicts. With it, the other side's records were copied from that service once and are their
    own since: one that differs has diverged, one whose key that service no longer holds is
    orphaned, and keys only that service holds are none of the check's business.
    """

    name: str
    entity: str
    sides: tuple[Side, Side]
    copied_from: str | None = None

    def __post_init__(self) -> None:
        first, second = self.sides
        if first.service == second.service:
            raise ValueError(f"{self.name}: both sides read {first.service}")
        if first.fields.keys() != second.fields.keys():
            strays = sorted(first.fields.keys() ^ second.fields.keys())
            raise ValueError(f"{self.name}: fields {strays} are read on one side only")
        if all(isinstance(side.reading, Lookup) for side in self.sides):
            raise ValueError(f"{self.name}: both sides are lookups; one must list its keys")
        if self.copied_from is not None and self.copied_from not in self.services:
            raise ValueError(
                f"{self.name}: copied_from {self.copied_from!r} is neither side's service"
            )
        for side in self.sides:
            if side.named_by is not None and self.copied_from in (side.service, None):
                raise ValueError(
                    f"{self.name}: named_by on {side.service}, which is no copy of the other side"
                )

    @property
    def services(self) -> tuple[str, str]:
        first, second = self.sides
        return first.service, second.service

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields compared, in the order findings list them."""
        return tuple(self.sides[0].fields)


@dataclass(frozen=True)
class Topology:
    services: tuple[Service, ...]
    entities: tuple[Entity, ...]
    relationships: tuple[Relationship, ...]
    edges: tuple[Edge, ...]
    commands: tuple[CommandPath, ...]
    # what two services hold of one entity, compared beside the copy edges
    comparisons: tuple[RecordCheck, ...] = ()
    # what the line is called where its help and pages name it
    title: str = ""
    # the line's own headings over kinds of service in its picture
    group_titles: Mapping[Kind, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_comparisons()
        walks: dict[tuple[str, str], set[tuple[str, Reader]]] = {}
        for edge in self.edges:
            if edge.walk is not None:
                walks.setdefault((edge.consumer, edge.walk), set()).add((edge.owner, edge.reader))
        for (consumer, walk), read in walks.items():
            if len(read) > 1:
                raise ValueError(
                    f"{consumer}'s walk {walk!r}: its edges read {len(read)} different APIs; "
                    "one walk reads one owner through one reader"
                )

    @property
    def called(self) -> str:
        """The line as a sentence names it."""
        return f"the '{self.title}' line" if self.title else "the line"

    def group_title(self, kind: Kind) -> str:
        return self.group_titles.get(kind, GROUP_TITLES[kind])

    def _check_comparisons(self) -> None:
        services = {service.name for service in self.services}
        entities = {entity.name for entity in self.entities}
        seen: set[str] = set()
        for check in self.comparisons:
            if check.name in seen:
                raise ValueError(f"{check.name}: two comparisons have this name")
            seen.add(check.name)
            if check.entity not in entities:
                raise ValueError(f"{check.name}: entity {check.entity!r} is not the line's")
            strays = [name for name in check.services if name not in services]
            if strays:
                raise ValueError(f"{check.name}: service {strays[0]!r} is not the line's")

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service named {name!r}")

    def entity(self, name: str) -> Entity:
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(f"no entity named {name!r}")

    def edge(self, name: str) -> Edge:
        name = edge_name(name)
        for edge in self.edges:
            if edge.name == name:
                return edge
        raise KeyError(f"no edge named {name!r}")

    def edges_into(self, consumer: str) -> tuple[Edge, ...]:
        return tuple(edge for edge in self.edges if edge.consumer == consumer)

    def edges_from(self, owner: str) -> tuple[Edge, ...]:
        return tuple(edge for edge in self.edges if edge.owner == owner)

    def owned_by(self, service: str) -> tuple[Entity, ...]:
        return tuple(entity for entity in self.entities if service in entity.owners)

    def upstreams(self, service: str) -> tuple[str, ...]:
        """Services this one reads copies from or sends commands to, in topology order."""
        names = {edge.owner for edge in self.edges_into(service)}
        names |= {command.target for command in self.commands if command.caller == service}
        return tuple(s.name for s in self.services if s.name in names)

    def copy_order(self) -> tuple[Edge, ...]:
        """Edges ordered so an owner's own copies are filled before anyone copies from it."""
        ordered: list[Edge] = []
        pending = list(self.edges)
        while pending:
            ready = [
                edge
                for edge in pending
                if not any(other.consumer == edge.owner for other in pending if other is not edge)
            ]
            if not ready:
                ready = pending[:1]
            for edge in ready:
                pending.remove(edge)
            ordered.extend(ready)
        return tuple(ordered)

    def with_overrides(self, overrides: Mapping[str, str]) -> Topology:
        """The same line with edges read another way: {edge or "*": "mechanism[@schedule]"}.

        A schedule is cron or a duration such as 10m, 1h or 1d. "*" changes every edge whose
        reader can be read that way and leaves the others; a named edge that cannot be refuses.
        """
        overrides = {edge_name(name): value for name, value in overrides.items()}
        known = {edge.name for edge in self.edges}
        for name in overrides:
            if name != "*" and name not in known:
                raise ValueError(f"{name}: no such edge (see `serviceline topology`)")
        wanted = {name: _override(name, value) for name, value in overrides.items()}
        fed = {entity.name for entity in self.entities if entity.change_feed}
        edges = []
        for edge in self.edges:
            if edge.name in wanted:
                edges.append(_overridden(edge, *wanted[edge.name], fed))
            elif "*" in wanted and _can_read(edge, wanted["*"][0], fed) is None:
                edges.append(_overridden(edge, *wanted["*"], fed))
            else:
                edges.append(edge)
        if "*" in wanted and all(_can_read(e, wanted["*"][0], fed) for e in self.edges):
            raise ValueError(f"*: no edge can be read by {wanted['*'][0].value}")
        return replace(self, edges=tuple(edges))

    def conflicts(self) -> dict[str, tuple[str, ...]]:
        """The comparisons of two services that each create the same thing, by name."""
        return {
            check.name: check.services for check in self.comparisons if check.copied_from is None
        }

    def kept_by(self, everything: str) -> dict[str, str]:
        """The edges an override of every edge ("*") leaves as they are, and why."""
        mechanism, _ = _override("*", everything)
        fed = {entity.name for entity in self.entities if entity.change_feed}
        found = ((edge.name, _can_read(edge, mechanism, fed)) for edge in self.edges)
        return {name: reason for name, reason in found if reason is not None}

    def reading_through(self, consumer: str, entities: Collection[str]) -> Topology:
        """The line with `consumer` asking the owners of `entities` live: it copies none of them."""
        copied = {edge.entity for edge in self.edges_into(consumer)}
        strays = sorted(set(entities) - copied)
        if strays:
            raise ValueError(f"{consumer} copies no {', '.join(strays)}: nothing to read through")
        kept = (e for e in self.edges if not (e.consumer == consumer and e.entity in entities))
        return replace(self, edges=tuple(kept))


# the schedule that reads an owner's change feed as it is written: `feed@follow`
FOLLOW = "follow"


def _override(name: str, value: str) -> tuple[Mechanism, str | None]:
    """One override's mechanism and cron schedule (None: keep the edge's own; FOLLOW: follow)."""
    mechanism, _, schedule = value.strip().partition("@")
    try:
        chosen = Mechanism(mechanism.strip())
    except ValueError:
        known = ", ".join(m.value for m in Mechanism)
        raise ValueError(f"{name}: mechanism {mechanism!r}: use one of {known}") from None
    if not schedule.strip():
        if "@" in value:
            raise ValueError(f"{name}: give a schedule after '@', e.g. {chosen.value}@10m")
        return chosen, None
    if schedule.strip() == FOLLOW:
        if chosen is not Mechanism.FEED:
            raise ValueError(
                f"{name}: {chosen.value}@{FOLLOW}: only a change feed can be followed; "
                f"give {Mechanism.FEED.value}@{FOLLOW}"
            )
        return chosen, FOLLOW
    return chosen, _cron(name, schedule.strip())


def _cron(name: str, schedule: str) -> str:
    """A cron schedule, or one for a duration that divides an hour, a day or a week evenly."""
    if " " in schedule:
        if not croniter.is_valid(schedule):
            raise ValueError(f"{name}: schedule {schedule!r} is not a valid cron expression")
        return schedule
    try:
        every = parse_duration(schedule)
    except ValueError as error:
        raise ValueError(f"{name}: schedule: {error}, or give a cron schedule") from None
    minutes, seconds = divmod(int(every.total_seconds()), 60)
    hours = minutes // 60
    if seconds == 0 and minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if seconds == 0 and minutes % 60 == 0 and hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if seconds == 0 and minutes == 24 * 60:
        return "0 0 * * *"
    if seconds == 0 and minutes == 7 * 24 * 60:
        return "0 0 * * 0"
    raise ValueError(
        f"{name}: every {schedule} does not divide an hour, a day or a week evenly; "
        "give a cron schedule instead"
    )


def _can_read(edge: Edge, mechanism: Mechanism, fed: Collection[str]) -> str | None:
    """Why `edge` cannot be read by `mechanism`, or None when it can; `fed`: entities with feeds."""
    if edge.mechanism is Mechanism.EVENT:
        return (
            f"{edge.name} is driven by {edge.consumer}'s own events; "
            "its mechanism and schedule cannot change"
        )
    if mechanism is Mechanism.EVENT:
        return f"{edge.name}: only {edge.consumer}'s own events could drive it, and it has none"
    if _reads_feed_instead(edge, mechanism, fed):
        return None
    readable = edge.reader.mechanisms
    if mechanism not in readable:
        ways = " or ".join(sorted(readable))
        return (
            f"{edge.name}: cannot be read by {mechanism.value}: it reads {edge.owner} through "
            f"{edge.reader.name}, which can only be read by {ways}"
        )
    return None


def _reads_feed_instead(edge: Edge, mechanism: Mechanism, fed: Collection[str]) -> bool:
    """A feed asked of an API without one, over records the owner's change feed carries."""
    return (
        mechanism is Mechanism.FEED
        and Mechanism.FEED not in edge.reader.mechanisms
        and edge.reader.feed_alike
        and edge.entity in fed
    )


def _overridden(
    edge: Edge, mechanism: Mechanism, schedule: str | None, fed: Collection[str]
) -> Edge:
    refused = _can_read(edge, mechanism, fed)
    if refused is not None:
        if schedule == FOLLOW:
            raise ValueError(
                f"{edge.name}: {mechanism.value}@{FOLLOW}: {edge.owner} serves "
                f"it no change feed to follow ({refused.removeprefix(edge.name + ': ')})"
            )
        raise ValueError(refused)
    reader = KERNEL_READER if _reads_feed_instead(edge, mechanism, fed) else edge.reader
    # an edge read through another API leaves its walk: the walk reads the old one
    walk = edge.walk if reader is edge.reader else None
    if schedule == FOLLOW or (schedule is None and edge.follow):
        # no schedule: the consumer parks on the owner's long-poll and applies what it brings
        return replace(
            edge, mechanism=mechanism, schedule=None, reader=reader, walk=walk, follow=True
        )
    return replace(
        edge,
        mechanism=mechanism,
        schedule=schedule or edge.schedule,
        reader=reader,
        walk=walk,
        follow=False,
    )
