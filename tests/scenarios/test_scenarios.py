"""Scenario files: parsing, the errors that name a step and a field, and checks run in-process."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from lines.becoming_a_teacher.seed import PROVIDER_CODE_LEADS
from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.scenarios.cli import on_free_ports
from serviceline.scenarios.jobs import summarise
from serviceline.scenarios.line import AttachedStack
from serviceline.scenarios.recording import Entry, Result, write_last
from serviceline.scenarios.runner import Options, Runner
from serviceline.scenarios.spec import (
    Bound,
    Request,
    Scenario,
    ScenarioError,
    Sync,
    builtin_names,
    format_duration,
    load,
    lookup,
    parse,
    references,
    substitute,
)
from serviceline.stack.launcher import free_port_offset
from serviceline.testing import ADMIN_TOKEN, API, API_TOKEN, AUDITOR_TOKEN, in_process_line
from tests import builders

COURSE = "3f6c1a4e-7b2d-4c55-9a0e-5d8f2b1c0a01"


def scenario(*steps: dict[str, Any], **head: Any) -> Scenario:
    return parse({"title": "a test", **head, "steps": list(steps)}, "test", "test")


def problems(*steps: dict[str, Any], **head: Any) -> list[str]:
    with pytest.raises(ScenarioError) as raised:
        scenario(*steps, **head)
    return raised.value.problems


def test_every_built_in_scenario_parses_and_starts_only_what_it_needs() -> None:
    names = builtin_names()
    assert len(names) >= 12
    for name in names:
        loaded = load(name)
        assert loaded.name == name
        assert loaded.title
        assert 2 <= len(loaded.needed()) <= 6, name
        assert loaded.watched(), name


def test_services_are_derived_from_the_steps_when_not_declared() -> None:
    derived = scenario(
        {"do": "POST publish /providers", "body": builders.provider()},
        {"expect": {"drift": {"publish.course.apply": {"stale": 0}}}},
    )
    assert derived.needed() == ["publish", "apply"]
    assert derived.watched() == [
        "publish.provider.apply",
        "publish.course.apply",
        "publish.site.apply",
    ]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"wait": "10m"}, "step 1 no action: give one of do, advance"),
        ({"advance": "10m", "sync": "publish.course.apply"}, "one action a step"),
        ({"advance": "ten minutes"}, "step 1 (advance) advance: 'ten minutes'"),
        ({"advance": "10m", "evry": "1m"}, "step 1 (advance) evry: unknown field (known: "),
        ({"do": "POST pubish /providers"}, "no service 'pubish'"),
        ({"do": "FETCH publish /providers"}, "is not 'METHOD SERVICE /path'"),
        (
            {"sync": "publish.course.nowhere"},
            "step 1 (sync) sync: no edge 'publish.course.nowhere'",
        ),
        (
            {"expect": {"drift": {"publish.course.apply": {"stal": 1}}}},
            "expect.drift.publish.course.apply.stal",
        ),
        (
            {"expect": {"drift": {"publish.course.apply": {"stale": "about 3"}}}},
            "'about 3' is not a number",
        ),
        ({"expect": {"lag": {"publish.course.apply": {"oldest": "<= soon"}}}}, "oldest"),
        ({"expect": {}}, "expect one or more of drift, value, lag, jobs, converged"),
        ({"expect": {"value": {"service": "find", "path": "/courses", "feild": "x"}}}, "feild"),
        (
            {"fault": "fail", "service": "publish", "for": "1h", "ends": "2026-10-05T10:00Z"},
            "for, ends: give one of them",
        ),
        (
            {"fault": "drop_pages", "service": "find", "edge": "publish.course.apply"},
            "edge: publish.course.apply is not one of find's copies",
        ),
        ({"fault": "explode", "service": "find"}, "step 1 (fault) fault: Input should be"),
        ({"until": {"converged": ["publish.course.find"]}}, "within: Field required"),
        ("advance 10m", "a step is a mapping"),
    ],
)
def test_a_bad_step_is_refused_naming_its_number_and_field(
    step: dict[str, Any], message: str
) -> None:
    found = problems(step)
    assert any(message in problem for problem in found), found


def test_every_problem_is_listed_with_its_step() -> None:
    found = problems(
        {"advance": "10m"},
        {"advance": "soon"},
        {"do": "GET publish /courses/${course}"},
        {"do": "POST publish /providers", "save": {"course": "uuid"}},
        {"do": "GET publish /courses/${course}"},
        {"expect": {"drift": {"apply.application.manage": {"stale": 0}}}},
        services=["publish", "apply"],
    )
    assert found[0].startswith("step 2 (advance) advance:")
    assert "step 3 (GET publish /courses/${course}): ${course} is not saved" in found[1]
    assert "step 6 (expect): manage is not among the scenario's services" in found[2]
    assert len(found) == 3


def test_the_head_of_a_scenario_is_checked_too() -> None:
    with pytest.raises(ScenarioError) as raised:
        parse({"steps": []}, "story.yaml")
    assert raised.value.source == "story.yaml"
    assert "title: Field required" in raised.value.problems
    assert "steps: give a list of one or more steps" in raised.value.problems
    found = problems({"advance": "1m"}, servics=["publish"], services=["publishing"])
    assert any(p.startswith("servics: unknown field (known: name, title") for p in found)
    assert any("services.0: no service 'publishing'" in p for p in found)
    with pytest.raises(ScenarioError, match="a scenario is a mapping"):
        parse(["advance: 1m"], "list.yaml")
    found = problems({"advance": "1m"}, services=["publish"], watch=["publish.course.find"])
    assert found == [
        "watch: publish.course.find needs find, not among the scenario's services (publish)"
    ]
    found = problems({"advance": "1m"}, name="my story")
    assert found == ["name: 'my story': use letters, digits, - and _ (it names the run's folder)"]


def test_x_keys_hold_anchors_that_steps_merge() -> None:
    text = """
title: anchors
x-course: &course {state: published, level: secondary}
steps:
  - do: POST publish /providers/2FR/courses
    body: {<<: *course, code: 3GTY}
"""
    loaded = parse(yaml.safe_load(text), "anchors.yaml", "anchors")
    step = loaded.steps[0]
    assert step.model_dump()["body"] == {"state": "published", "level": "secondary", "code": "3GTY"}


def test_an_edge_is_named_either_way_and_kept_in_the_spelling_a_shell_passes_on() -> None:
    text = """
title: spellings
steps:
  - sync: publish.course->apply
  - expect:
      drift: {publish.course->apply: {stale: 0}}
      lag: {publish.course.apply: {changes: 0}}
"""
    loaded = parse(yaml.safe_load(text), "spellings.yaml", "spellings")
    sync = loaded.steps[0]
    assert isinstance(sync, Sync)
    assert sync.sync == "publish.course.apply"
    assert loaded.steps[1].audited() == {"publish.course.apply"}


def test_a_file_is_loaded_by_path_and_a_missing_one_said_so(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("title: mine\nsteps:\n  - advance: 1h\n", encoding="utf-8")
    assert load(str(path)).name == "mine"
    with pytest.raises(ScenarioError, match="cannot read it"):
        load(str(tmp_path / "absent.yaml"))
    with pytest.raises(ScenarioError, match="no built-in scenario or file of that name"):
        load("no-such-scenario")
    path.write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not YAML"):
        load(str(path))


def test_bounds_compare_numbers_and_spans() -> None:
    exactly = Bound.parse(3, span=False)
    assert (exactly.holds(3), exactly.holds(4), str(exactly)) == (True, False, "3")
    at_most = Bound.parse("<= 2", span=False)
    assert (at_most.holds(2), at_most.holds(3), str(at_most)) == (True, False, "<= 2")
    longer = Bound.parse(">= 6h", span=True)
    assert (longer.holds(6 * 3600), longer.holds(3600), str(longer)) == (True, False, ">= 6h")
    assert str(Bound.parse("2h1m", span=True)) == "2h1m"
    with pytest.raises(ValueError, match="give a number"):
        Bound.parse(True, span=False)
    assert format_duration(0) == "0s"
    assert format_duration(90061) == "1d1h1m1s"


def test_lookup_reads_keys_indexes_and_selections() -> None:
    answer = {"courses": [{"code": "3GTY", "name": "Art"}, {"code": "G1X2", "name": "Maths"}]}
    assert lookup(answer, "courses.1.name") == "Maths"
    assert lookup(answer, "courses.-1.code") == "G1X2"
    assert lookup(answer, "courses.[code=3GTY].name") == "Art"
    assert lookup(answer["courses"], "[code=G1X2].name") == "Maths"
    for path, message in (
        ("courses.5", "no item 5 in a list of 2"),
        ("total", "no 'total' in"),
        ("courses.[code=XXXX]", "no item with code = 'XXXX'"),
        ("[code=3GTY]", "needs a list"),
    ):
        with pytest.raises(LookupError, match=message):
            lookup(answer, path)


def test_variables_are_filled_in_keeping_their_types() -> None:
    values = {"course": COURSE, "codes": ["A", "B"], "count": 2}
    body = {"uuid": "${course}", "path": "/courses/${course}/x", "sites": "${codes}", "n": 1}
    assert substitute(body, values) == {
        "uuid": COURSE,
        "path": f"/courses/{COURSE}/x",
        "sites": ["A", "B"],
        "n": 1,
    }
    assert references({"a": ["${one}", {"${two}": "x ${three}"}]}) == {"one", "two", "three"}


def test_a_summary_says_what_jobs_did_and_why_they_failed() -> None:
    copied = {"upserted": 2, "deleted": 1, "flagged": 0, "rejected": [], "relisted": True}
    nothing = {"upserted": 0, "deleted": 0, "flagged": 0}
    down = "publish answered 503: unreachable: ConnectError('All connection attempts failed')"
    ran = [
        {"service": "apply", "job": "publish.course.apply", "ok": True, "result": copied},
        {"service": "apply", "job": "publish.site.apply", "ok": True, "result": nothing},
        {"service": "apply", "job": "publish.site.apply", "ok": False, "error": down},
        {"service": "find", "job": "publish.course.find", "ok": False, "error": down},
        {"service": "find", "job": "publish.course.find", "ok": False, "error": down},
        {"service": "register", "job": "hesa.itt_record.register", "ok": False, "error": "x"},
        {
            "service": "register",
            "job": "register.retrieve_trns",
            "ok": False,
            "error": "boom\nand more",
        },
        {
            "service": "register",
            "job": "register.create_trainees_from_apply",
            "ok": True,
            "result": {"created": 1, "waiting_for_course": 0},
        },
        {"service": "publish", "job": "feed.prune", "ok": True, "result": {"pruned": 0}},
    ]
    assert summarise(ran, {"publish", "apply", "find", "register"}, LINE) == (
        "publish.course.apply: copied 2, deleted 1, relisted; "
        "register.create_trainees_from_apply: created 1; "
        "failed (publish answered 503): publish.site.apply, publish.course.find 2 times; "
        "failed (boom): register.retrieve_trns; "
        "2 quiet job runs"
    )


def test_the_last_run_is_written_as_the_dashboard_reads_it(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from serviceline.scenarios.auditing import EdgeLag
    from serviceline.scenarios.recording import Check

    entry = Entry(
        3,
        datetime(2026, 10, 5, 10, 1, tzinfo=UTC),
        "expect",
        "",
        {"publish.course.apply": {"in_sync": 0, "stale": 1}},
        {"publish.course.apply": EdgeLag(1, 60.0, 660.0)},
        {},
        False,
        [Check(False, "publish.course.apply stale: expected 0, found 1")],
    )
    result = Result(
        "course-renamed",
        "t",
        "fail",
        None,
        {"*": "feed@1m"},
        {},
        ["publish"],
        [entry],
        ["step 3 (expect): stale: expected 0, found 1"],
        1.5,
    )
    path = write_last(result, tmp_path)
    assert path == tmp_path / "scenarios" / "last.json"
    written = json.loads(path.read_text(encoding="utf-8"))
    assert {k: written[k] for k in ("scenario", "verdict", "seed", "overrides", "failures")} == {
        "scenario": "course-renamed",
        "verdict": "fail",
        "seed": None,
        "overrides": {"*": "feed@1m"},
        "failures": ["step 3 (expect): stale: expected 0, found 1"],
    }
    [line] = written["timeline"]
    assert line["at"] == "2026-10-05T10:01:00+00:00"
    assert (line["step"], line["changed"], line["ok"]) == ("expect", "", False)
    assert line["drift"] == {"publish.course.apply": {"in_sync": 0, "stale": 1}}


STORY: list[dict[str, Any]] = [
    {"do": "POST publish /providers", "body": builders.provider()},
    {"do": "POST publish /providers/2FR/sites", "body": builders.site()},
    {
        "do": "POST publish /providers/2FR/courses",
        "body": builders.course(uuid=COURSE),
        "save": {"course": "uuid"},
    },
    {"advance": "10m"},
    {"do": "PATCH publish /courses/${course}", "body": {"name": "Art"}},
    {"expect": {"drift": {"publish.course.apply": {"stale": 1}}}},
]


@pytest.mark.anyio
async def test_a_story_runs_in_process_and_its_checks_hold(state_dir: Path) -> None:
    story = scenario(
        *STORY,
        {
            "until": {"converged": ["publish.course.find", "publish.course.apply"]},
            "within": "1h",
            "took": "10m",
        },
        {
            "expect": {
                "value": {
                    "service": "apply",
                    "path": "/copies/course/${course}",
                    "field": "name",
                    "equals": "Art",
                },
                "lag": {"publish.course.apply": {"changes": 0, "since_sync": "0s"}},
                "jobs": {"apply": {"publish.course.apply": {"ran": 2, "failed": 0}}},
            }
        },
        watch=["publish.course.find", "publish.course.apply"],
    )
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        runner = Runner(
            story,
            AttachedStack(line.clients, LINE),
            api_token=API_TOKEN,
            admin_token=ADMIN_TOKEN,
            auditor_token=AUDITOR_TOKEN,
        )
        timeline = await runner.run()
    assert runner.failures == []
    assert [entry.number for entry in timeline] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert "publish.course.apply: copied 1;" in timeline[4].changed
    assert timeline[6].drift["publish.course.apply"]["stale"] == 1
    assert timeline[7].took_seconds == 600
    assert timeline[7].changed.startswith("after 10m; ")
    assert "publish.course.find: copied 1; " in timeline[7].changed
    assert [check.ok for check in timeline[8].checks] == [True] * 5


@pytest.mark.anyio
async def test_a_failed_check_says_what_it_expected_and_found(state_dir: Path) -> None:
    story = scenario(
        *STORY,
        {"expect": {"drift": {"publish.course.apply": {"stale": 0, "in_sync": ">= 1"}}}},
        {
            "expect": {
                "value": {
                    "service": "apply",
                    "path": "/copies/course/${course}",
                    "field": "name",
                    "equals": "Art",
                }
            }
        },
        {"until": {"value": {"service": "apply", "path": "/copies/course/nope"}}, "within": "20m"},
        {
            "do": "POST publish /providers",
            "body": {"code": "2FR"},
            "status": 201,
            "save": {"code": "code"},
        },
        {"do": "GET publish /providers/${code}"},
        {"advance": "1h"},
        watch=["publish.course.apply"],
    )
    async with in_process_line(["publish", "apply"], state_dir) as line:
        runner = Runner(
            story,
            AttachedStack(line.clients, LINE),
            api_token=API_TOKEN,
            admin_token=ADMIN_TOKEN,
            auditor_token=AUDITOR_TOKEN,
        )
        timeline = await runner.run()
    assert runner.failures[:3] == [
        "step 7 (expect): publish.course.apply stale: expected 0, found 1",
        "step 7 (expect): publish.course.apply in_sync: expected >= 1, found 0",
        'step 8 (expect): apply /copies/course/${course} name: expected "Art", '
        'found "Art and Design"',
    ]
    assert runner.failures[3].startswith(
        "step 9 (until): not within 20m: apply /copies/course/nope: expected status 200, found 404"
    )
    assert runner.failures[4].startswith(
        "step 10 (POST publish /providers): expected 201, found 422"
    )
    assert runner.failures[5] == (
        "step 11 (GET publish /providers/${code}): "
        "${code} has no value: the step that saves it did not succeed"
    )
    assert timeline[-1].number == 11  # the story stops at a step that cannot be done
    assert timeline[-1].ok is False


@pytest.mark.anyio
async def test_a_story_stops_at_a_step_that_cannot_be_done(state_dir: Path) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        found = []
        for story in (
            scenario({"stop": "publish"}, {"advance": "1m"}),
            scenario({"do": "POST publish /providers", "body": {}}, {"advance": "1m"}),
        ):
            runner = Runner(
                story,
                AttachedStack(line.clients, LINE),
                api_token=API_TOKEN,
                admin_token=ADMIN_TOKEN,
                auditor_token=AUDITOR_TOKEN,
            )
            timeline = await runner.run()
            assert [entry.number for entry in timeline] == [0, 1]
            found += runner.failures
    assert found[0] == (
        "step 1 (stop publish): cannot stop publish of a line started elsewhere; run without --url"
    )
    assert found[1].startswith("step 1 (POST publish /providers): publish answered 422:")
    assert len(found) == 2


@pytest.mark.anyio
async def test_the_comparisons_a_scenario_names_are_the_auditors(state_dir: Path) -> None:
    names = sorted({service for pair in LINE.conflicts().values() for service in pair})
    async with in_process_line(names, state_dir) as line:
        auditor = line.auditor()
        found = {c.name: tuple(c.services) for c in await auditor.comparisons()}
    assert found == LINE.conflicts()


def test_the_partnership_story_creates_no_provider_a_seed_could_hold() -> None:
    story = load("partnership-conflict")
    created = [
        step.body["code"]
        for step in story.steps
        if isinstance(step, Request) and step.parts()[:2] == ("POST", "publish")
        if step.parts()[2] == "/providers"
    ]
    assert len(created) == 3
    assert not [code for code in created if code[0] in PROVIDER_CODE_LEADS]


@pytest.mark.anyio
async def test_the_partnership_story_runs_on_a_line_holding_partnerships_of_its_own(
    state_dir: Path,
) -> None:
    """Its counts are what it adds to the line's own; run again, it refuses at its first step."""
    async with in_process_line(["publish", "manage"], state_dir) as line:
        publish, manage = line.clients["publish"], line.clients["manage"]
        for code in ("1AB", "2CD"):
            answer = await publish.post("/providers", json=builders.provider(code), headers=API)
            assert answer.status_code == 201, answer.text
        pair = {"accredited_provider_code": "1AB"}
        for body, service in (
            ({**pair, "training_provider_code": "2CD"}, publish),
            ({**pair, "lead_partner_code": "2CD"}, manage),
            ({**pair, "lead_partner_code": "3EF"}, manage),  # Manage's alone: conflicting
        ):
            assert (await service.post("/partnerships", json=body, headers=API)).is_success

        async def run() -> Runner:
            runner = Runner(
                load("partnership-conflict"),
                AttachedStack(line.clients, LINE),
                api_token=API_TOKEN,
                admin_token=ADMIN_TOKEN,
                auditor_token=AUDITOR_TOKEN,
            )
            await runner.run()
            return runner

        first = await run()
        assert first.failures == []
        checked = [check.text for entry in first.timeline for check in entry.checks]
        assert (
            "accredited provider to lead partner conflicting 2, besides the line's own 1" in checked
        )
        again = await run()
    assert len(again.failures) == 1
    assert again.failures[0].startswith("step 1 (POST publish /providers): publish already holds")
    assert "an earlier run of this story; run it without --url" in again.failures[0]
    assert [entry.number for entry in again.timeline] == [0, 1]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["scenario", *args])
    return result.exit_code, " ".join(result.output.split())


def test_the_command_lists_the_built_in_scenarios() -> None:
    code, shown = invoke("list")
    assert code == 0, shown
    for name in builtin_names():
        assert name in shown


def test_the_command_refuses_bad_input_before_starting_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: bad\nsteps:\n  - advance: soon\n", encoding="utf-8")
    code, shown = invoke("run", str(bad), "--state-dir", str(tmp_path))
    assert code == 2
    assert "step 1 (advance) advance" in shown
    code, shown = invoke("run", "course-renamed", "--override", "publish.course.nowhere=feed")
    assert code == 2
    assert "publish.course.nowhere: no such edge" in shown
    code, shown = invoke("run", "course-renamed", "--all", "teleport@1m")
    assert code == 2
    assert "mechanism 'teleport'" in shown
    code, shown = invoke("run", "course-renamed", "--seed", "3")
    assert code == 2
    assert "takes no seed" in shown
    code, shown = invoke("run", "partnership-conflict", "--setting", "find.read_through=true")
    assert code == 2
    assert "does not run find" in shown
    code, shown = invoke("run", "course-renamed", "--setting", "find.reads_live=true")
    assert code == 2
    assert "find has no setting 'reads_live'" in shown
    code, shown = invoke("run", "course-renamed", "--setting", "find=true")
    assert code == 2
    assert "give SERVICE.FIELD=VALUE" in shown
    code, shown = invoke("compare", "course-renamed")
    assert code == 2
    assert "what to compare" in shown
    assert not (tmp_path / "scenarios").exists()


@pytest.mark.anyio
async def test_took_counts_from_the_owners_commit_of_the_change_it_waited_for(
    state_dir: Path,
) -> None:
    """The rename is committed at 00:10; the step begins at 00:13 and Apply has it at 00:20."""
    story = scenario(
        *STORY[:-1],
        {"advance": "3m"},
        {
            "until": {"converged": ["publish.course.apply"]},
            "within": "1h",
            "took": "10m",
        },
        watch=["publish.course.apply"],
    )
    async with in_process_line(["publish", "find", "apply"], state_dir) as line:
        runner = Runner(
            story,
            AttachedStack(line.clients, LINE),
            api_token=API_TOKEN,
            admin_token=ADMIN_TOKEN,
            auditor_token=AUDITOR_TOKEN,
        )
        timeline = await runner.run()
    assert runner.failures == []
    waited = timeline[-1]
    assert (waited.step, waited.at.isoformat()) == ("until", "2026-10-05T00:20:00+00:00")
    assert waited.took_seconds == 600
    assert waited.changed.startswith("after 10m; ")


def test_a_run_on_busy_ports_moves_its_own_line_to_free_ones_and_says_so(state_dir: Path) -> None:
    scenario = load("course-renamed")
    wanted = free_port_offset()
    options = Options(state_dir=state_dir, port_offset=wanted)
    console = Console(record=True, width=200)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", LINE.service("apply").port + wanted))
        busy.listen()
        moved = on_free_ports(scenario.needed(), options, console)
    assert moved.port_offset != wanted
    shown = console.export_text()
    assert f"port offset {moved.port_offset}" in shown
    assert f"apply {LINE.service('apply').port + moved.port_offset}" in shown
    assert on_free_ports(scenario.needed(), options, console).port_offset == wanted  # free again


@pytest.mark.anyio
async def test_a_provider_edited_mid_sync_is_missed_until_the_next_sync(state_dir: Path) -> None:
    story = load("edited-mid-sync")
    assert story.settings == {"apply": {"page_size": "2"}}
    async with in_process_line(["publish", "apply"], state_dir, page_size=2) as line:
        runner = Runner(
            story,
            AttachedStack(line.clients, LINE),
            api_token=API_TOKEN,
            admin_token=ADMIN_TOKEN,
            auditor_token=AUDITOR_TOKEN,
        )
        timeline = await runner.run()
    assert runner.failures == []
    missed, healed = timeline[7], timeline[8]
    assert missed.drift["publish.provider.apply"]["stale"] == 1
    # renamed at 00:10, read past at 00:20, listed again at 00:30
    assert healed.took_seconds == 1200
