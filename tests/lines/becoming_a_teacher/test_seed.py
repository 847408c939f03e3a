import random
from dataclasses import dataclass
from typing import Any

from lines.becoming_a_teacher.seed import (
    VOLUMES,
    ApplySeed,
    MentoringSeed,
    PublishSeed,
    apply,
    dqt_people,
    mentoring,
    publish,
    schools,
)
from serviceline.model.lines import Size


@dataclass
class LinePlan:
    schools: list[dict[str, Any]]
    publish: PublishSeed
    apply: ApplySeed
    people: list[dict[str, Any]]
    mentoring: MentoringSeed


def plan(seed: int) -> LinePlan:
    rng = random.Random(seed)
    volumes = VOLUMES[Size.SMALL]
    school_rows = schools(rng, volumes.schools)
    offered = publish(rng, volumes, school_rows)
    applied = apply(rng, volumes, offered)
    people = dqt_people(rng, volumes)
    return LinePlan(
        school_rows, offered, applied, people, mentoring(rng, volumes, people, school_rows, offered)
    )


def test_the_same_seed_gives_the_same_line_and_another_seed_another() -> None:
    assert plan(7) == plan(7)
    assert plan(7) != plan(8)


def test_small_seed_volumes_and_links() -> None:
    line = plan(1)
    volumes = VOLUMES[Size.SMALL]
    assert len({s["urn"] for s in line.schools}) == volumes.schools
    assert len(line.publish.providers) == volumes.providers
    courses = [c for cs in line.publish.courses.values() for c in cs]
    assert len({c["uuid"] for c in courses}) == volumes.courses
    for code, provider_courses in line.publish.courses.items():
        codes = {site["code"] for site in line.publish.sites[code]}
        assert all(set(course["site_codes"]) <= codes for course in provider_courses)
    assert len(line.apply.candidates) == volumes.candidates
    published = {c["uuid"] for c in courses if c["state"] == "published"}
    assert all(c["course_uuid"] in published for cs in line.apply.choices for c in cs)
    trns = {p["trn"] for p in line.people if p["kind"] == "teacher"}
    assert {m["trn"] for m in line.mentoring.mentors["placements"]} <= trns


def test_large_is_the_real_line_scale() -> None:
    large = VOLUMES[Size.LARGE]
    assert (large.providers, large.courses, large.candidates) == (2_000, 30_000, 150_000)
    assert large.schools * 0.9 >= 25_000  # nine in ten schools are open
