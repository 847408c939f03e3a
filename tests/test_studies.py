"""Study files, their what-ifs resolved edge by edge, their calendars, and the command's errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from serviceline.cli import app
from serviceline.studies.spec import (
    CalendarFault,
    StudyError,
    arms,
    builtin_names,
    load,
    parse,
    resolve,
)

GOOD: dict[str, Any] = {"title": "a week", "span": "1w"}


def problems(**fields: Any) -> list[str]:
    with pytest.raises(StudyError) as caught:
        parse({**GOOD, **fields}, "study.yaml", "study")
    return caught.value.problems


def test_every_built_in_study_loads() -> None:
    assert set(builtin_names()) >= {"cycle", "updated-since-vs-feed"}
    for name in builtin_names():
        assert load(name).name == name


def test_a_study_runs_a_whole_cycle_on_the_default_workload_by_default() -> None:
    study = parse({"title": "defaults"}, "study.yaml", "study")
    assert (study.workload, study.size.value, study.seed, study.sample_every) == (
        "default",
        "small",
        1,
        "1d",
    )
    assert (study.ends() - study.began()).days == 365
    assert study.span_text() == "365d"
    assert "sits" in study.needed()


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"span": "1q"}, "span: '1q'"),
        ({"span": "1w", "end": "2027-01-01T00:00:00Z"}, "span and end"),
        ({"end": "2026-01-01T00:00:00Z"}, "end:"),
        ({"sample_every": "daily"}, "sample_every:"),
        ({"size": "huge"}, "size:"),
        ({"workload": "x-1"}, "workload:"),
        ({"workload": "missing.yaml"}, "workload:"),
        ({"services": ["publish", "nowhere"]}, "services.1:"),
        ({"services": ["publish", "find"]}, "services: the seed writes to gias"),
        (
            {"overrides": {"publish.course->find": "carrier-pigeon"}},
            "overrides.publish.course->find",
        ),
        ({"overrides": {"publish.*->nowhere": "feed"}}, "overrides: 'publish.*->nowhere'"),
        (
            {"faults": [{"service": "publish", "every": "tuesdays", "lasting": "2h"}]},
            "faults.0.every",
        ),
        (
            {
                "faults": [
                    {"service": "publish", "every": "0 9 * * 2", "lasting": "2h", "kind": "melt"}
                ]
            },
            "faults.0.kind",
        ),
        ({"faults": [{"service": "publish", "every": "0 9 * * 2"}]}, "faults.0.lasting"),
        ({"variants": {"feed": {"overrides": {"x->y": "feed"}}}}, "variants.feed.overrides"),
        ({"colour": "blue"}, "colour: unknown field (known: name, title"),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    found = problems(**fields)
    assert any(named in problem for problem in found), found


def test_an_override_is_resolved_edge_by_edge_naming_what_cannot_change() -> None:
    arm = resolve(
        "feed", "feed", {"publish.*->apply": "feed@10m", "publish.*->find": "feed@10m"}, []
    )
    assert arm.changed == ["publish.provider->find", "publish.course->find"]
    assert arm.applied == {"publish.provider->find": "feed@10m", "publish.course->find": "feed@10m"}
    assert set(arm.refused) == {
        "publish.provider->apply",
        "publish.course->apply",
        "publish.site->apply",
    }
    assert all("publish_v1" in why for why in arm.refused.values())


def test_an_override_that_reads_an_edge_as_it_is_read_changes_nothing() -> None:
    arm = resolve("same", "same", {"publish.*->apply": "updated_since@10m"}, [])
    assert arm.changed == []
    assert len(arm.applied) == 3
    assert arm.refused == {}


def test_an_event_edge_is_named_as_unchangeable() -> None:
    arm = resolve("all", "all", {"*": "snapshot@1d"}, [])
    assert "dqt.teacher->register" in arm.refused
    assert "publish.course->find" in arm.changed


def test_each_variant_adds_its_overrides_and_may_replace_the_calendar() -> None:
    study = load("updated-since-vs-feed")
    polled, feed = arms(study, ["updated-since", "feed"])
    assert "publish.course->apply" in feed.refused
    assert "apply.application->manage" in feed.changed
    assert "apply.application->manage" in polled.changed
    assert "apply.application->register" in feed.refused
    assert [arm.name for arm in arms(study)] == ["updated-since-vs-feed"]


def test_a_calendar_fault_is_on_in_each_window_its_schedule_names() -> None:
    fault = CalendarFault(service="publish", every="0 9 * * 2", lasting="2h")
    start = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday
    windows = fault.windows(start, datetime(2026, 10, 20, tzinfo=UTC))
    assert [(b.isoformat(), e.isoformat()) for b, e in windows] == [
        ("2026-10-06T09:00:00+00:00", "2026-10-06T11:00:00+00:00"),
        ("2026-10-13T09:00:00+00:00", "2026-10-13T11:00:00+00:00"),
    ]
    at_the_end = fault.windows(start, datetime(2026, 10, 6, 10, tzinfo=UTC))
    assert at_the_end[-1][1] == datetime(2026, 10, 6, 10, tzinfo=UTC)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["study", *args])
    return result.exit_code, " ".join(result.output.split())


def test_the_command_lists_the_built_in_studies() -> None:
    code, shown = invoke("list")
    assert code == 0, shown
    assert "cycle" in shown
    assert "updated-since-vs-feed" in shown


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["run", "no-such-study"], "no built-in study or file of that name"),
        (["run", "cycle", "--span", "1q"], "--span: '1q'"),
        (["run", "cycle", "--size", "huge"], "--size: Input should be 'small'"),
        (["run", "cycle", "--workload", "x0"], "--workload:"),
        (["compare", "cycle"], "give two or more studies or variants"),
        (["compare", "updated-since-vs-feed:nope", "cycle"], "has no variant 'nope'"),
        (["compare", "cycle", "cycle"], "cycle: named twice"),
    ],
)
def test_the_command_refuses_bad_input_naming_it(args: list[str], named: str) -> None:
    code, shown = invoke(*args)
    assert code == 2, shown
    assert named in shown


def test_a_bad_study_file_is_refused_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"title": "bad", "span": "soon", "size": "huge"}))
    code, shown = invoke("run", str(bad))
    assert code == 2
    assert "span:" in shown
    assert "size:" in shown
