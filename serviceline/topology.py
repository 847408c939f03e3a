"""The service line: services, entities, relationships, copy edges and command paths."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any


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
    EDUBASE_CSV = "edubase_csv"  # GIAS daily edubasealldata<YYYYMMDD>.csv


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
    schedule: str
    mapping: Mapping[str, str]
    reader: Reader = Reader.KERNEL
    scope: Scope = EVERYTHING
    value_maps: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    policy: Policy = Policy.OWNER_WINS
    overlap: timedelta = timedelta(0)
    full_sync_schedule: str | None = None
    keep_referenced: bool = False
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.entity}->{self.consumer}"

    @property
    def key_field(self) -> str:
        """The consumer's column holding the owner's key: the first mapped field."""
        return next(iter(self.mapping.values()))

    def translate(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The owner's record as the consumer stores it: renamed and value-mapped."""
        copied: dict[str, Any] = {}
        for source, target in self.mapping.items():
            value = record.get(source)
            values = self.value_maps.get(target)
            if values is not None and value in values:
                value = values[value]
            copied[target] = value
        return copied


@dataclass(frozen=True)
class CommandPath:
    """A real write from one service into another's API: a command to the owner, not a copy."""

    caller: str
    target: str
    api: str
    description: str


@dataclass(frozen=True)
class Topology:
    services: tuple[Service, ...]
    entities: tuple[Entity, ...]
    relationships: tuple[Relationship, ...]
    edges: tuple[Edge, ...]
    commands: tuple[CommandPath, ...]

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
)

ENTITIES = (
    Entity("school", ("gias",), "urn", "an establishment in Get information about schools"),
    Entity("provider", ("publish",), "code", "a training provider in one recruitment cycle"),
    Entity("course", ("publish",), "uuid", "a teacher training course"),
    Entity("site", ("publish",), "uuid", "a provider's location where a course runs"),
    Entity("partnership", ("publish",), "id", "accredited provider to training provider"),
    Entity("candidate", ("apply",), "id", "a person applying for teacher training"),
    Entity("application", ("apply",), "id", "one application choice: a candidate and a course"),
)

RELATIONSHIPS = (
    Relationship("accredited provider to lead partner", ("publish", "manage")),
    Relationship("course to accredited provider", ("publish",)),
    Relationship("course to school", ("publish",)),
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
        reader=Reader.PUBLISH_V1,
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        description="SyncAllProvidersAndCoursesWorker: every 10 minutes, 2 h overlap; weekly full",
    ),
    Edge(
        "publish",
        "apply",
        "course",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        _frozen({**COURSE_FIELDS, "state": "withdrawn", "findable": "exposed_in_find"}),
        reader=Reader.PUBLISH_V1,
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
        description="SyncCourses: study mode both becomes full_time_or_part_time",
    ),
    Edge(
        "publish",
        "apply",
        "site",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        SITE_FIELDS,
        reader=Reader.PUBLISH_V1,
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        keep_referenced=True,
        description="SyncSites: a vanished site used by an application is flagged, not deleted",
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
)

COMMANDS = (
    CommandPath(
        "manage",
        "apply",
        "vendor API v1: offer, reject, confirm-conditions-met",
        "a provider's decision, sent to the owner of the application",
    ),
)

LINE = Topology(SERVICES, ENTITIES, RELATIONSHIPS, EDGES, COMMANDS)
