"""Study files, their what-ifs resolved edge by edge, their calendars, and the command's errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.dashboard.views import read_study
from serviceline.studies.report import write_compare
from serviceline.studies.results import compare_json, to_json, write_last
from serviceline.studies.runner import Sample, StudyRun
from serviceline.studies.spec import (
    CalendarFault,
    StudyError,
    arms,
    builtin_names,
    load,
    parse,
    resolve,
)
from serviceline.testing import ROOT

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
            {"overrides": {"publish.course.find": "carrier-pigeon"}},
            "overrides.publish.course.find",
        ),
        ({"overrides": {"publish.*.nowhere": "feed"}}, "overrides: 'publish.*.nowhere'"),
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
        ({"variants": {"feed": {"overrides": {"x.y": "feed"}}}}, "variants.feed.overrides"),
        ({"colour": "blue"}, "colour: unknown field (known: name, title"),
        (
            {
                "services": ["gias", "publish", "apply", "manage", "dqt", "placements", "claims"],
                "faults": [{"service": "find", "every": "0 9 * * 2", "lasting": "2h"}],
            },
            "faults: find is not among the study's services",
        ),
    ],
)
def test_a_bad_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    found = problems(**fields)
    assert any(named in problem for problem in found), found


def test_an_override_is_resolved_edge_by_edge_naming_what_cannot_change() -> None:
    arm = resolve("feed", "feed", {"publish.*.register": "feed@1h"}, [], LINE)
    # Publish's courses are in its change feed; its fixed list of subjects is not
    assert arm.changed == ["publish.course.register"]
    assert arm.applied == {"publish.course.register": "feed@1h"}
    assert list(arm.refused) == ["publish.subject.register"]
    assert "publish_v1" in arm.refused["publish.subject.register"]


def test_an_override_that_reads_an_edge_as_it_is_read_changes_nothing() -> None:
    arm = resolve("same", "same", {"publish.*.apply": "updated_since@10m"}, [], LINE)
    assert arm.changed == []
    assert len(arm.applied) == 3
    assert arm.refused == {}


def test_an_event_edge_is_named_as_unchangeable() -> None:
    arm = resolve("all", "all", {"*": "snapshot@1d"}, [], LINE)
    assert "dqt.teacher.register" in arm.refused
    assert "publish.course.find" in arm.changed


def test_each_variant_adds_its_overrides_and_may_replace_the_calendar() -> None:
    study = load("updated-since-vs-feed")
    polled, feed = arms(study, ["updated-since", "feed"])
    apply = {"publish.provider.apply", "publish.course.apply", "publish.site.apply"}
    assert feed.refused == {}
    assert set(polled.applied) >= apply
    assert apply.isdisjoint(polled.changed), "Apply already polls it every 10 minutes"
    assert apply <= set(feed.changed), "Apply reads Publish's change feed instead"
    assert set(polled.changed) == set(feed.changed) - apply
    assert "apply.application.manage" in feed.changed
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


def edge_figures(changes: int, lag: float | None, runs: int) -> dict[str, Any]:
    stats = None if lag is None else dict.fromkeys(("p50", "p95", "p99", "max", "mean"), lag)
    fates = {
        "changes": changes,
        "delivered": changes,
        "superseded": 0,
        "never_delivered": 0,
        "pending": 0,
        "lag_seconds": stats,
        "visibility": [[60, 0.5], [604800, 1.0]],
    }
    cost = {"runs": runs, "empty_runs": runs - 1, "skipped_runs": 0, "requests": runs, "bytes": 10}
    return {**fates, "by_op": {"upsert": fates}, "cost": cost}


def finished(name: str, lag: float) -> dict[str, Any]:
    """A run's results as the runner leaves them, with figures chosen by hand."""
    study = parse({**GOOD, "span": "1d"}, "study.yaml", "hand")
    start = study.began()
    counts = {"in_sync": 3, "stale": 1, "diverged": 0, "orphaned": 0, "missing": 0}
    samples = [
        Sample(
            start + timedelta(hours=hours),
            {
                "publish.course.find": {
                    "counts": {**counts, "conflicting": 0},
                    "lost_local_edits": None,
                    "lag_changes": 1,
                    "oldest_age_seconds": 60.0,
                }
            },
            {},
            {},
        )
        for hours in (0, 12, 24)
    ]
    lag_report = {
        "edges": {"publish.course.find": edge_figures(4, lag, 288)},
        "journeys": {},
    }
    (arm,) = arms(study)
    arm = replace(arm, name=name, title=name)
    run = StudyRun(
        study,
        arm,
        start,
        study.ends(),
        samples,
        lag_report,
        {"counts": {"course_renamed": 4}, "failures": {}},
        {},
        [],
        1.0,
    )
    return to_json(run)


def test_a_comparison_and_its_pointer_are_written_for_the_dashboard(tmp_path: Path) -> None:
    done = [finished("slow", 600.0), finished("fast", 60.0)]
    schema = json.loads((ROOT / "docs" / "study.schema.json").read_text(encoding="utf-8"))
    for results in done:
        jsonschema.validate(results, schema)
    assert done[0]["headline"]["worst_p95"] == {"edge": "publish.course.find", "seconds": 600.0}
    folders = [tmp_path / results["arm"]["name"] for results in done]
    compared = compare_json(done, folders)
    assert compared["edges"]["publish.course.find"]["fast"]["p95_seconds"] == 60.0
    page = write_compare(compared, tmp_path).read_text(encoding="utf-8")
    assert page.count("<svg") == 3
    assert "10m" in page  # the slow arm's p95
    write_last(tmp_path, "compare", compared, tmp_path / "compare.html")
    shown = read_study(tmp_path)
    assert shown is not None
    assert [arm.name for arm in shown.arms] == ["slow", "fast"]
    assert ("worst p95 lag", "1m (publish.course.find)") in shown.arms[1].figures
