"""Edges of a topology: their names, their editable columns, and how overrides move them."""

import dataclasses

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.model.topology import Mechanism


def test_an_edge_refuses_editable_columns_it_does_not_copy_and_its_key() -> None:
    schools = LINE.edge("gias.school.placements")
    for columns in ({"email"}, {"urn"}):
        with pytest.raises(ValueError, match=sorted(columns)[0]):
            dataclasses.replace(schools, editable=frozenset(columns))


def test_an_edge_is_named_so_a_shell_passes_it_on_and_its_older_spelling_still_finds_it() -> None:
    edge = LINE.edge("publish.course.apply")
    assert edge.name == "publish.course.apply"
    assert LINE.edge("publish.course->apply") is edge
    moved = LINE.with_overrides({"publish.course->apply": "feed@1m"}).edge(edge.name)
    assert moved.mechanism is Mechanism.FEED
    assert all(name.isidentifier() for e in LINE.edges for name in e.name.split("."))


def test_no_service_or_entity_name_may_hold_the_dot_that_parts_an_edge_name() -> None:
    with pytest.raises(ValueError, match="holds a dot"):
        dataclasses.replace(LINE.edge("publish.course.apply"), consumer="apply.v2")


def test_an_override_of_every_edge_names_the_edges_it_keeps_and_why() -> None:
    kept = LINE.kept_by("feed@1m")
    assert "publish.course.apply" not in kept  # courses have a feed it may read instead
    assert "publish_v1" in kept["publish.subject.register"]
    assert "register's own events" in kept["dqt.teacher.register"]
    moved = LINE.with_overrides({"*": "feed@1m"})
    for edge in LINE.edges:
        same = moved.edge(edge.name).mechanism is edge.mechanism is not Mechanism.FEED
        assert same == (edge.name in kept), edge.name
