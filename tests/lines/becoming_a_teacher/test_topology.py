"""The DfE line's topology against the source document and the real services: every owner and
relationship the document names, every real copy's mechanism and schedule."""

import dataclasses

import pytest

from lines.becoming_a_teacher.readers import PUBLISH_V1
from lines.becoming_a_teacher.topology import LINE
from serviceline.model.topology import Kind, Mechanism, Policy

# ../shared/seed/service-line-data-flow.md, "Data entity ownership", as written there
OWNERSHIP = """
| application | Apply for teacher training |
| course | Publish teacher training courses |
| placement | Manage school placements |
| provider | Publish teacher training courses |
| school | Get information about schools |
| teacher | Database of Qualified Teachers |
| trainee | Register teacher trainees |
| mentor | Manage school placements and Claim funding for mentor training |
"""

# "Data relationships": each service independently creates these
RELATIONSHIPS = """
| Accredited provider to lead partner | Publish teacher training courses and Manage teacher training applications |
| Course to accredited provider | Publish teacher training courses |
| Course to school | Publish teacher training courses |
| ITT provider to school | Manage school placements |
"""  # noqa: E501

# "Some relationships are defined within data entities"
WITHIN_ENTITIES = """
| Candidate to application | Apply for teacher training |
| Course to accredited provider | Publish teacher training courses |
| Course to school | Publish teacher training courses |
"""

# the document names Register both ways; the service's own name is "Register trainee teachers"
ALIASES = {"Register teacher trainees": "Register trainee teachers"}


def rows(table: str) -> list[tuple[str, tuple[str, ...]]]:
    parsed = []
    for line in table.strip().splitlines():
        subject, services = (cell.strip() for cell in line.strip("|").split("|"))
        titles = tuple(ALIASES.get(t, t) for t in services.split(" and "))
        parsed.append((subject, titles))
    return parsed


def service_named(title: str) -> str:
    matches = [s.name for s in LINE.services if s.title == title]
    assert matches, f"no service titled {title!r} in the topology"
    return matches[0]


@pytest.mark.parametrize(("entity", "titles"), rows(OWNERSHIP))
def test_every_entity_has_the_owners_the_document_gives(
    entity: str, titles: tuple[str, ...]
) -> None:
    assert LINE.entity(entity).owners == tuple(service_named(t) for t in titles)


@pytest.mark.parametrize(("table", "within"), [(RELATIONSHIPS, False), (WITHIN_ENTITIES, True)])
def test_every_relationship_is_created_by_the_services_the_document_gives(
    table: str, within: bool
) -> None:
    declared = {
        (r.name.lower(), r.services) for r in LINE.relationships if r.within_entity is within
    }
    expected = {
        (name.lower(), tuple(service_named(t) for t in titles)) for name, titles in rows(table)
    }
    assert declared == expected


def test_the_document_lists_every_service_and_third_party() -> None:
    services = {
        "Publish teacher training courses",
        "Find postgraduate teacher training",
        "Apply for teacher training",
        "Manage teacher training applications",
        "Register trainee teachers",
        "Claim funding for mentor training",
        "Manage school placements",
    }
    third_parties = {
        "Database of Qualified Teachers",
        "Get information about schools",
        "Higher Education Statistics Agency",
    }
    record_systems = {"Ellucian Banner", "Oracle", "Thesis Cloud", "Tribal SITS"}
    by_kind = {kind: {s.title for s in LINE.services if s.kind is kind} for kind in Kind}
    assert by_kind[Kind.SERVICE] == services
    assert by_kind[Kind.THIRD_PARTY] == third_parties
    assert by_kind[Kind.RECORD_SYSTEM] == record_systems


def test_edges_copy_only_from_an_owner_of_the_entity() -> None:
    for edge in LINE.edges:
        assert edge.owner in LINE.entity(edge.entity).owners, edge.name
        assert edge.consumer not in LINE.entity(edge.entity).owners, edge.name


def test_every_scheduled_edge_has_a_schedule_and_only_events_have_none() -> None:
    for edge in LINE.edges:
        assert (edge.schedule is None) is (edge.mechanism is Mechanism.EVENT), edge.name


def test_ports_and_names_are_unique() -> None:
    assert len({s.port for s in LINE.services}) == len(LINE.services)
    assert len({s.name for s in LINE.services}) == len(LINE.services)
    assert len({e.name for e in LINE.edges}) == len(LINE.edges)


@pytest.mark.parametrize(
    ("edge", "mechanism", "schedule"),
    [
        ("publish.course.apply", Mechanism.UPDATED_SINCE, "*/10 * * * *"),
        ("gias.school.publish", Mechanism.SNAPSHOT, "30 2 * * *"),
        ("publish.subject.register", Mechanism.SNAPSHOT, "0 2 * * *"),
        ("publish.course.register", Mechanism.SNAPSHOT, "0 3 * * *"),
        ("apply.application.register", Mechanism.UPDATED_SINCE, "0 1 * * *"),
        ("gias.school.register", Mechanism.SNAPSHOT, "30 2 * * 0"),
        ("hesa.itt_record.register", Mechanism.UPDATED_SINCE, "0 8-23/2 * * *"),
        ("publish.provider.placements", Mechanism.SNAPSHOT, "15 0 * * *"),
        ("publish.subject.placements", Mechanism.SNAPSHOT, "0 0 * * *"),
        ("publish.subject.claims", Mechanism.SNAPSHOT, "0 0 * * *"),
        ("gias.school.placements", Mechanism.SNAPSHOT, "30 23 * * *"),
        ("dqt.teacher.placements", Mechanism.SNAPSHOT, "5 0 * * *"),
        ("publish.provider.claims", Mechanism.SNAPSHOT, "15 0 * * *"),
        ("gias.school.claims", Mechanism.SNAPSHOT, "30 23 * * *"),
        ("dqt.teacher.claims", Mechanism.SNAPSHOT, "5 0 * * *"),
    ],
)
def test_real_copies_keep_their_real_mechanism_and_schedule(
    edge: str, mechanism: Mechanism, schedule: str
) -> None:
    assert LINE.edge(edge).mechanism is mechanism
    assert LINE.edge(edge).schedule == schedule


def test_apply_keeps_the_real_two_hour_overlap_and_weekly_full_sync() -> None:
    for entity in ("provider", "course", "site"):
        edge = LINE.edge(f"publish.{entity}.apply")
        assert edge.overlap.total_seconds() == 2 * 3600
        assert edge.full_sync_schedule == "59 0 * * 6"


def test_only_the_mentor_services_let_schools_edit_their_contact_details_until_the_import() -> None:
    editable = {edge.name: edge for edge in LINE.edges if edge.editable}
    assert set(editable) == {"gias.school.placements", "gias.school.claims"}
    for edge in editable.values():
        assert edge.editable == {"telephone", "website", "address1", "town", "postcode"}
        assert edge.policy is Policy.OWNER_WINS


def test_apply_reads_providers_courses_and_sites_in_one_walk_of_one_api() -> None:
    walked = {edge.name for edge in LINE.edges if edge.walk is not None}
    assert walked == {f"publish.{entity}.apply" for entity in ("provider", "course", "site")}
    sites = LINE.edge("publish.site.apply")
    strays = tuple(
        dataclasses.replace(e, reader=PUBLISH_V1) if e is sites else e for e in LINE.edges
    )
    with pytest.raises(ValueError, match="apply's walk 'SyncAllProvidersAndCourses'"):
        dataclasses.replace(LINE, edges=strays)
    # read from the change feed instead, an edge leaves the walk the others still make
    fed = LINE.with_overrides({"publish.course.apply": "feed"})
    assert fed.edge("publish.course.apply").walk is None
    assert fed.edge("publish.site.apply").walk == "SyncAllProvidersAndCourses"
