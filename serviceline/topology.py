"""The service line: services, entities, relationships, copy edges and command paths."""

from __future__ import annotations

import zlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from croniter import croniter

from serviceline.clock import parse_duration

# Sidekiq retries a failed job 25 times unless told otherwise; Register's ApplicationJob retries
# 10 attempts 3 s apart first (ActiveJob's retry_on), then leaves the error to Sidekiq's retries
SIDEKIQ_RETRIES = 25
# Apply's SyncAllProvidersAndCoursesWorker: sidekiq_options retry: 3
APPLY_SYNC_RETRIES = 3
# one walk of Publish's API v1 copies providers, their courses and those courses' sites
APPLY_SYNC = "SyncAllProvidersAndCourses"


class Kind(StrEnum):
    SERVICE = "service"
    THIRD_PARTY = "third_party"
    RECORD_SYSTEM = "record_system"


class Mechanism(StrEnum):
    FEED = "feed"
    UPDATED_SINCE = "updated_since"
    SNAPSHOT = "snapshot"
    EVENT = "event"


class Reader(StrEnum):
    """Which of the owner's APIs an edge reads through."""

    KERNEL = "kernel"  # /feed/{entity} and /records/{entity}, served by every owner
    PUBLISH_V1 = "publish_v1"  # Teacher Training Courses API v1 (JSON:API)
    # the same API walked provider by provider, course by course, as Apply's sync walks it
    PUBLISH_V1_PROVIDER_TREE = "publish_v1_provider_tree"
    EDUBASE_CSV = "edubase_csv"  # GIAS daily edubasealldata<YYYYMMDD>.csv
    APPLY_REGISTER_API = "apply_register_api"  # Apply's register-api: recruited applications
    APPLY_VENDOR_API = "apply_vendor_api"  # Apply's vendor API v1: GET /applications?since=
    HESA_COLLECTION = "hesa_collection"  # HESA ITT census XML, <Student> records
    DQT_TEACHERS = "dqt_teachers"  # DQT/TRS GET /v3/teachers/{trn}, one TRN at a time


# how each of an owner's APIs can be read: only the kernel API keeps a change feed; a whole file
# or one key at a time can only be listed in full
READABLE_BY: Mapping[Reader, frozenset[Mechanism]] = MappingProxyType(
    {
        Reader.KERNEL: frozenset({Mechanism.FEED, Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        Reader.PUBLISH_V1: frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        Reader.PUBLISH_V1_PROVIDER_TREE: frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        Reader.EDUBASE_CSV: frozenset({Mechanism.SNAPSHOT}),
        Reader.APPLY_REGISTER_API: frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        Reader.APPLY_VENDOR_API: frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        Reader.HESA_COLLECTION: frozenset({Mechanism.UPDATED_SINCE, Mechanism.SNAPSHOT}),
        Reader.DQT_TEACHERS: frozenset({Mechanism.SNAPSHOT}),
    }
)
# APIs whose records carry the owner's own field names: a what-if can read the same records
# from the owner's change feed instead, as if the owner had built one beside the API
FEED_ALIKE: frozenset[Reader] = frozenset({Reader.PUBLISH_V1, Reader.PUBLISH_V1_PROVIDER_TREE})


class Policy(StrEnum):
    OWNER_WINS = "owner_wins"
    LOCAL_WINS = "local_wins"


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    kind: Kind
    port: int
    package: str


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
    reader: Reader = Reader.KERNEL
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
            self.mechanism is not Mechanism.FEED or self.reader is not Reader.KERNEL
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
    readable = READABLE_BY[edge.reader]
    if mechanism not in readable:
        ways = " or ".join(sorted(readable))
        return (
            f"{edge.name}: cannot be read by {mechanism.value}: it reads {edge.owner} through "
            f"{edge.reader.value}, which can only be read by {ways}"
        )
    return None


def _reads_feed_instead(edge: Edge, mechanism: Mechanism, fed: Collection[str]) -> bool:
    """A feed asked of an API without one, over records the owner's change feed carries."""
    return (
        mechanism is Mechanism.FEED
        and Mechanism.FEED not in READABLE_BY[edge.reader]
        and edge.reader in FEED_ALIKE
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
    reader = Reader.KERNEL if _reads_feed_instead(edge, mechanism, fed) else edge.reader
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


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


def _codes(*values: str) -> frozenset[str]:
    return frozenset(values)


SERVICES = (
    Service("gias", "Get information about schools", Kind.THIRD_PARTY, 8101, "stubs.gias"),
    Service("publish", "Publish teacher training courses", Kind.SERVICE, 8102, "services.publish"),
    Service("find", "Find postgraduate teacher training", Kind.SERVICE, 8103, "services.find"),
    Service("apply", "Apply for teacher training", Kind.SERVICE, 8104, "services.apply"),
    Service(
        "manage", "Manage teacher training applications", Kind.SERVICE, 8105, "services.manage"
    ),
    Service("register", "Register trainee teachers", Kind.SERVICE, 8106, "services.register"),
    Service("dqt", "Database of Qualified Teachers", Kind.THIRD_PARTY, 8107, "stubs.dqt"),
    Service("hesa", "Higher Education Statistics Agency", Kind.THIRD_PARTY, 8108, "stubs.hesa"),
    Service("placements", "Manage school placements", Kind.SERVICE, 8109, "services.placements"),
    Service("claims", "Claim funding for mentor training", Kind.SERVICE, 8110, "services.claims"),
    Service("sits", "Tribal SITS", Kind.RECORD_SYSTEM, 8111, "systems.sits"),
    Service("banner", "Ellucian Banner", Kind.RECORD_SYSTEM, 8112, "systems.banner"),
    Service("oracle", "Oracle", Kind.RECORD_SYSTEM, 8113, "systems.oracle"),
    Service("thesis", "Thesis Cloud", Kind.RECORD_SYSTEM, 8114, "systems.thesis"),
)

RECORD_SYSTEMS = tuple(s.name for s in SERVICES if s.kind is Kind.RECORD_SYSTEM)


def record_system_for(provider_code: str) -> str:
    """The student record system a university provider runs: each runs one, and keeps it."""
    return RECORD_SYSTEMS[zlib.crc32(provider_code.encode()) % len(RECORD_SYSTEMS)]


ENTITIES = (
    Entity("school", ("gias",), "urn", "an establishment in Get information about schools"),
    Entity("provider", ("publish",), "code", "a training provider in one recruitment cycle"),
    Entity("course", ("publish",), "uuid", "a teacher training course"),
    Entity("site", ("publish",), "uuid", "a provider's location where a course runs"),
    Entity("partnership", ("publish",), "id", "accredited provider to training provider"),
    Entity("subject", ("publish",), "code", "a subject a course teaches", change_feed=False),
    Entity("candidate", ("apply",), "id", "a person applying for teacher training", True),
    Entity(
        "application", ("apply",), "id", "one application choice: a candidate and a course", True
    ),
    Entity("trainee", ("register",), "slug", "a trainee teacher, from recruitment to award", True),
    Entity(
        "teacher",
        ("dqt",),
        "trn",
        "a person with a TRN: teachers, but also trainees and others, such as widows and "
        "widowers who collect their partner's pension",
        personal=True,
    ),
    Entity("itt_record", ("hesa",), "husid", "a trainee's record in HESA's ITT collection", True),
    Entity("placement", ("placements",), "id", "a school placement offered to a provider"),
    Entity("school_partnership", ("placements",), "id", "an ITT provider working with a school"),
    Entity("mentor", ("placements", "claims"), "trn", "a school's mentor of trainees", True),
    # names its mentors by TRN, with the hours each trained
    Entity("claim", ("claims",), "id", "a school's claim for mentor training funding", True),
)

RELATIONSHIPS = (
    Relationship("accredited provider to lead partner", ("publish", "manage")),
    Relationship("course to accredited provider", ("publish",)),
    Relationship("course to school", ("publish",)),
    Relationship("ITT provider to school", ("placements",)),
    Relationship("candidate to application", ("apply",), within_entity=True),
    Relationship("course to accredited provider", ("publish",), within_entity=True),
    Relationship("course to school", ("publish",), within_entity=True),
)

SCHOOL_FROM_EDUBASE = _frozen(
    {
        "URN": "urn",
        "EstablishmentName": "name",
        "EstablishmentStatus (code)": "status_code",
        "TypeOfEstablishment (code)": "type_code",
        "EstablishmentTypeGroup (code)": "group_code",
        "PhaseOfEducation (code)": "phase_code",
        "UKPRN": "ukprn",
        "Street": "address1",
        "Town": "town",
        "Postcode": "postcode",
        "GOR (code)": "region_code",
        "StatutoryLowAge": "minimum_age",
        "StatutoryHighAge": "maximum_age",
    }
)

PROVIDER_FIELDS = _frozen(
    {
        "code": "code",
        "name": "name",
        "provider_type": "provider_type",
        "accredited_body": "accredited_body",
        "ukprn": "ukprn",
        "urn": "urn",
        "postcode": "postcode",
        "region_code": "region_code",
    }
)

COURSE_FIELDS = {
    "uuid": "uuid",
    "code": "code",
    "provider_code": "provider_code",
    "accredited_provider_code": "accredited_provider_code",
    "name": "name",
    "level": "level",
    "study_mode": "study_mode",
    "program_type": "program_type",
    "qualifications": "qualifications",
    "funding_type": "funding_type",
    "subject_codes": "subject_codes",
    "age_minimum": "age_minimum",
    "age_maximum": "age_maximum",
    "start_date": "start_date",
}

SITE_FIELDS = _frozen(
    {
        "uuid": "uuid",
        "code": "code",
        "provider_code": "provider_code",
        "name": "name",
        "street_address_1": "street_address_1",
        "city": "city",
        "postcode": "postcode",
        "urn": "urn",
    }
)

APPLICATION_FIELDS = _frozen(
    {
        "id": "id",
        "candidate_id": "candidate_id",
        "status": "status",
        "course_uuid": "course_uuid",
        "provider_code": "provider_code",
        "course_code": "course_code",
        "site_code": "site_code",
        "study_mode": "study_mode",
        "first_name": "first_name",
        "last_name": "last_name",
        "date_of_birth": "date_of_birth",
        "submitted_at": "submitted_at",
        "offer_made_at": "offer_made_at",
        "recruited_at": "recruited_at",
    }
)

REGISTER_SCHOOL_FROM_EDUBASE = _frozen(
    {
        "URN": "urn",
        "EstablishmentName": "name",
        "OpenDate": "open_date",
        "CloseDate": "close_date",
        "Town": "town",
        "Postcode": "postcode",
    }
)

MENTOR_SERVICES_SCHOOL_FROM_EDUBASE = _frozen(
    {
        "URN": "urn",
        "EstablishmentName": "name",
        "UKPRN": "ukprn",
        "Street": "address1",
        "Town": "town",
        "Postcode": "postcode",
        "TelephoneNum": "telephone",
        "SchoolWebsite": "website",
        "TypeOfEstablishment (name)": "type_of_establishment",
        "PhaseOfEducation (name)": "phase",
        "StatutoryLowAge": "minimum_age",
        "StatutoryHighAge": "maximum_age",
        "LA (name)": "local_authority_name",
        "GOR (name)": "region",
    }
)

SCHOOL_CONTACT_DETAILS = frozenset({"telephone", "website", "address1", "town", "postcode"})

OPEN_ENGLISH_SCHOOLS = Scope(
    include={"EstablishmentStatus (code)": _codes("1", "3")},
    exclude={"TypeOfEstablishment (code)": _codes("25", "30", "37")},
    description="open English schools (status 1 or 3; no offshore, Welsh or overseas schools)",
)

TEACHER_NAMES = _frozen({"trn": "trn", "firstName": "first_name", "lastName": "last_name"})

REGISTER_COURSE_FIELDS = _frozen(
    {
        "uuid": "uuid",
        "code": "code",
        "provider_code": "provider_code",
        "accredited_provider_code": "accredited_body_code",
        "name": "name",
        "level": "level",
        "study_mode": "study_mode",
        "program_type": "route",
        "qualifications": "qualifications",
        "subject_codes": "subject_codes",
        "age_minimum": "min_age",
        "age_maximum": "max_age",
        "start_date": "published_start_date",
        "state": "state",
    }
)

RECRUITED_APPLICATION_FIELDS = _frozen(
    {
        "id": "apply_id",
        "attributes.status": "status",
        "attributes.candidate.first_name": "first_name",
        "attributes.candidate.last_name": "last_name",
        "attributes.candidate.date_of_birth": "date_of_birth",
        "attributes.contact_details.email": "email",
        "attributes.course.training_provider_code": "provider_code",
        "attributes.course.course_code": "course_code",
        "attributes.course.site_code": "site_code",
        "attributes.course.study_mode": "study_mode",
        "attributes.recruited_at": "recruited_at",
    }
)

HESA_STUDENT_FIELDS = _frozen(
    {
        "F_HUSID": "hesa_id",
        "F_FNAMES": "first_names",
        "F_SURNAME": "last_name",
        "F_BIRTHDTE": "date_of_birth",
        "F_NQTEMAIL": "email",
        "F_UKPRN": "ukprn",
        "F_OWNSTU": "provider_trainee_id",
        "F_TRN": "trn",
        "F_ITTAIM": "itt_aim",
        "F_MODE": "study_mode",
        "F_ITTSTARTDATE": "itt_start_date",
        "F_SBJCA1": "course_subject_one",
        "F_STATUS": "status",
    }
)

VENDOR_APPLICATION_FIELDS = _frozen(
    {
        "id": "id",
        "attributes.status": "status",
        "attributes.candidate.first_name": "first_name",
        "attributes.candidate.last_name": "last_name",
        "attributes.candidate.date_of_birth": "date_of_birth",
        "attributes.contact_details.email": "email",
        "attributes.course.provider_code": "provider_code",
        "attributes.course.course_code": "course_code",
        "attributes.course.site_code": "site_code",
        "attributes.course.study_mode": "study_mode",
        "attributes.recruited_at": "recruited_at",
        "attributes.updated_at": "application_updated_at",
    }
)

# how often each student record system polls Apply's vendor API: each vendor chooses its own
RECORD_SYSTEM_POLLING = {
    "sits": "*/15 * * * *",
    "banner": "0 * * * *",
    "oracle": "*/30 * * * *",
    "thesis": "0 */4 * * *",
}


def _mentor_service_edges(consumer: str) -> tuple[Edge, ...]:
    """Placements and Claims are one real app: they copy the same things the same way."""
    return (
        Edge(
            "publish",
            consumer,
            "provider",
            Mechanism.SNAPSHOT,
            "15 0 * * *",
            PROVIDER_FIELDS,
            reader=Reader.PUBLISH_V1,
            keep_referenced=True,
            description="PublishTeacherTraining::Provider::SyncAllJob, daily 00:15",
        ),
        Edge(
            "publish",
            consumer,
            "subject",
            Mechanism.SNAPSHOT,
            "0 0 * * *",
            _frozen({"code": "code", "name": "name"}),
            reader=Reader.PUBLISH_V1,
            description="PublishTeacherTraining::Subject::SyncAllJob, daily 00:00",
        ),
        Edge(
            "gias",
            consumer,
            "school",
            Mechanism.SNAPSHOT,
            "30 23 * * *",
            MENTOR_SERVICES_SCHOOL_FROM_EDUBASE,
            reader=Reader.EDUBASE_CSV,
            scope=OPEN_ENGLISH_SCHOOLS,
            # a school keeps its contact details up to date here; the next import's upsert_all
            # writes every column from the CSV over them
            policy=Policy.OWNER_WINS,
            editable=SCHOOL_CONTACT_DETAILS,
            keep_referenced=True,
            source_key="URN",
            description="Gias::SyncAllSchoolsJob, daily 23:30; onboarded or partnered schools kept",
        ),
        Edge(
            "dqt",
            consumer,
            "teacher",
            Mechanism.SNAPSHOT,
            "5 0 * * *",
            TEACHER_NAMES,
            reader=Reader.DQT_TEACHERS,
            keep_referenced=True,
            description="TeachingRecord::SyncAllMentorsJob, daily 00:05: one read per mentor's "
            "TRN, 300 a minute; overwrites the mentor's names",
        ),
    )


def _record_system_edges() -> tuple[Edge, ...]:
    return tuple(
        Edge(
            "apply",
            system,
            "application",
            Mechanism.UPDATED_SINCE,
            RECORD_SYSTEM_POLLING[system],
            VENDOR_APPLICATION_FIELDS,
            reader=Reader.APPLY_VENDOR_API,
            description=f"{system} polls GET /api/v1/applications?since= for its providers",
        )
        for system in RECORD_SYSTEMS
    )


EDGES = (
    Edge(
        "gias",
        "publish",
        "school",
        Mechanism.SNAPSHOT,
        "30 2 * * *",
        SCHOOL_FROM_EDUBASE,
        reader=Reader.EDUBASE_CSV,
        scope=Scope(
            exclude={"TypeOfEstablishment (code)": _codes("25", "30", "37")},
            description="English establishments (no offshore, Welsh or overseas schools)",
        ),
        source_key="URN",
        description="GiasImportJob: yesterday's edubase CSV, daily 02:30",
    ),
    Edge(
        "publish",
        "find",
        "provider",
        Mechanism.FEED,
        "*/5 * * * *",
        PROVIDER_FIELDS,
        description="Find keeps its own search copy, following Publish's change feed",
    ),
    Edge(
        "publish",
        "find",
        "course",
        Mechanism.FEED,
        "*/5 * * * *",
        _frozen({**COURSE_FIELDS, "state": "state", "findable": "findable"}),
        description="Find keeps its own search copy, following Publish's change feed",
    ),
    Edge(
        "publish",
        "apply",
        "provider",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        PROVIDER_FIELDS,
        reader=Reader.PUBLISH_V1_PROVIDER_TREE,
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        retries=APPLY_SYNC_RETRIES,
        walk=APPLY_SYNC,
        description="SyncAllProvidersAndCoursesWorker: every 10 minutes, 2 h overlap; weekly full",
    ),
    Edge(
        "publish",
        "apply",
        "course",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        _frozen({**COURSE_FIELDS, "state": "withdrawn", "findable": "exposed_in_find"}),
        reader=Reader.PUBLISH_V1_PROVIDER_TREE,
        scope=Scope(
            exclude={"state": _codes("draft", "rolled_over")},
            description="every course but drafts and rolled-over ones, as SyncCourses skips them",
        ),
        value_maps=_frozen(
            {
                "study_mode": {"both": "full_time_or_part_time"},
                "withdrawn": {
                    "withdrawn": True,
                    "published": False,
                    "draft": False,
                    "rolled_over": False,
                },
            }
        ),
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        retries=APPLY_SYNC_RETRIES,
        walk=APPLY_SYNC,
        description="SyncCourses: each changed provider's courses; study mode both becomes "
        "full_time_or_part_time",
    ),
    Edge(
        "publish",
        "apply",
        "site",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        SITE_FIELDS,
        reader=Reader.PUBLISH_V1_PROVIDER_TREE,
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        retries=APPLY_SYNC_RETRIES,
        keep_referenced=True,
        walk=APPLY_SYNC,
        description="SyncSites: each synced course's locations with include=location_status; a "
        "vanished site used by an application is flagged, not deleted",
    ),
    Edge(
        "apply",
        "manage",
        "application",
        Mechanism.FEED,
        "*/5 * * * *",
        APPLICATION_FIELDS,
        description="Manage reads the applications sent to providers",
    ),
    Edge(
        "publish",
        "register",
        "subject",
        Mechanism.SNAPSHOT,
        "0 2 * * *",
        _frozen({"code": "code", "name": "name"}),
        reader=Reader.PUBLISH_V1,
        keep_referenced=True,
        description="TeacherTrainingApi::ImportSubjectsJob, daily 02:00",
    ),
    Edge(
        "publish",
        "register",
        "course",
        Mechanism.SNAPSHOT,
        "0 3 * * *",
        REGISTER_COURSE_FIELDS,
        reader=Reader.PUBLISH_V1,
        scope=Scope(
            include={"state": _codes("published", "rolled_over", "withdrawn")},
            exclude={"level": _codes("further_education")},
            description="published, rolled over or withdrawn courses; no further education",
        ),
        keep_referenced=True,
        description="TeacherTrainingApi::ImportCoursesJob, daily 03:00",
    ),
    Edge(
        "apply",
        "register",
        "application",
        Mechanism.UPDATED_SINCE,
        "0 1 * * *",
        RECRUITED_APPLICATION_FIELDS,
        reader=Reader.APPLY_REGISTER_API,
        description="RecruitsApi::ImportApplicationsJob, daily 01:00, changed_since the last "
        "sync; draft trainees follow at 04:00, university courses skipped",
    ),
    Edge(
        "gias",
        "register",
        "school",
        Mechanism.SNAPSHOT,
        "30 2 * * 0",
        REGISTER_SCHOOL_FROM_EDUBASE,
        reader=Reader.EDUBASE_CSV,
        scope=Scope(
            exclude={"TypeOfEstablishment (code)": _codes("29")},
            description="every establishment but higher education institutions (type 29)",
        ),
        keep_referenced=True,
        source_key="URN",
        description="SchoolData::ImportJob, weekly Sunday 02:30; referenced schools kept",
    ),
    Edge(
        "hesa",
        "register",
        "itt_record",
        Mechanism.UPDATED_SINCE,
        "0 8-23/2 * * *",
        HESA_STUDENT_FIELDS,
        reader=Reader.HESA_COLLECTION,
        source_key="F_HUSID",
        description="Hesa::RetrieveCollectionJob, every 2 hours 08:00-23:00",
    ),
    Edge(
        "dqt",
        "register",
        "teacher",
        Mechanism.EVENT,
        None,
        _frozen({**TEACHER_NAMES, "dateOfBirth": "date_of_birth"}),
        reader=Reader.DQT_TEACHERS,
        description="Trs::RetrieveTrnJob: after a TRN request, polls 1 minute later, then "
        "hourly for up to 4 days, and copies the TRN",
    ),
    *_mentor_service_edges("placements"),
    *_mentor_service_edges("claims"),
    *_record_system_edges(),
)

COMMANDS = (
    CommandPath(
        "manage",
        "apply",
        "vendor API v1: offer, reject, confirm-conditions-met",
        "a provider's decision, sent to the owner of the application",
    ),
    CommandPath(
        "register",
        "dqt",
        "POST /v3/trn-requests; PUT /v3/persons/{trn}/routes-to-professional-statuses/{slug}",
        "Register asks for a TRN when a trainee is submitted, then sends route status changes",
    ),
    *(
        CommandPath(
            system,
            target,
            api,
            description,
        )
        for system in RECORD_SYSTEMS
        for target, api, description in (
            (
                "apply",
                "vendor API v1: offer, reject, confirm-conditions-met",
                "the provider's decisions, made in its student record system",
            ),
            (
                "register",
                "Register API: POST /trainees, PUT, defer, withdraw, recommend-for-qts",
                "a university pushes its trainees to Register",
            ),
            (
                "hesa",
                "ITT collection: POST /apis/itt/1.1/students",
                "a university submits its trainees' records to HESA",
            ),
        )
    ),
)

MENTOR_FIELDS = _frozen({name: name for name in ("first_name", "last_name", "school_urns")})
MENTOR_SERVICES = tuple(
    Side(
        Listing(service, "/mentors", after="trn"),
        ("trn",),
        MENTOR_FIELDS,
        _frozen({"school_urns": Normal.SORTED}),
    )
    for service in ("placements", "claims")
)
# a Publish site's address field -> the GIAS school's field it was copied from
SITE_ADDRESS = _frozen({"street_address_1": "street", "city": "town", "postcode": "postcode"})

COMPARISONS = (
    RecordCheck(
        "accredited provider to lead partner",
        "partnership",
        (
            Side(
                Listing("publish", "/partnerships"),
                ("accredited_provider_code", "training_provider_code"),
            ),
            Side(
                Listing("manage", "/partnerships"),
                ("accredited_provider_code", "lead_partner_code"),
            ),
        ),
    ),
    RecordCheck("co-owned mentor", "mentor", (MENTOR_SERVICES[0], MENTOR_SERVICES[1])),
    RecordCheck(
        "trainee's TRN to DQT person",
        "teacher",
        (
            Side(
                Listing("register", "/trainees", after="slug"),
                ("trn",),
                _frozen(
                    {
                        "first_name": "first_names",
                        "last_name": "last_name",
                        "date_of_birth": "date_of_birth",
                    }
                ),
                _frozen({"first_name": Normal.FIRST_WORD}),
                where="trn",
            ),
            Side(
                Lookup("dqt", "/v3/persons/{key}"),
                fields=_frozen(
                    {
                        "first_name": "firstName",
                        "last_name": "lastName",
                        "date_of_birth": "dateOfBirth",
                    }
                ),
            ),
        ),
    ),
    # a site Publish edited, or whose school GIAS has changed since, is diverged; a site whose
    # school GIAS no longer lists is orphaned
    RecordCheck(
        "site added from a GIAS school",
        "site",
        (
            Side(
                Listing("publish", "/records/site", items="records"),
                ("urn",),
                _frozen({name: name for name in SITE_ADDRESS}),
                where="urn",
                named_by="uuid",
            ),
            Side(Listing("gias", "/records/school", items="records"), ("urn",), SITE_ADDRESS),
        ),
        copied_from="gias",
    ),
)

LINE = Topology(SERVICES, ENTITIES, RELATIONSHIPS, EDGES, COMMANDS, COMPARISONS)
