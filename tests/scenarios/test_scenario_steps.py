"""The step interpreter: each kind of step dispatched to its handler, and handlers on their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.scenarios.errors import StepError
from serviceline.scenarios.line import AttachedStack
from serviceline.scenarios.recording import Check
from serviceline.scenarios.runner import Runner
from serviceline.scenarios.spec import (
    STEPS,
    ClearFaults,
    Fault,
    Note,
    Request,
    Scenario,
    Step,
    parse,
)
from serviceline.scenarios.steps import HANDLERS, Run, clear_faults, fault, handler_for, request
from serviceline.testing import (
    ADMIN_TOKEN,
    API_TOKEN,
    AUDITOR_TOKEN,
    LineUnderTest,
    in_process_line,
)
from tests import builders

PROVIDERS = "/api/public/v1/recruitment_cycles/current/providers"


class Teleport(Step):
    """A kind of step the specification could grow without the runner learning it."""

    action = ("teleport",)
    teleport: str

    def label(self) -> str:
        return f"teleport to {self.teleport}"


def publish_only() -> Scenario:
    story = {"title": "a test", "services": ["publish"], "steps": [{"note": "publish alone"}]}
    return parse(story, "test", "test")


def runner(story: Scenario, line: LineUnderTest) -> Runner:
    return Runner(
        story,
        AttachedStack(line.clients, LINE),
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        auditor_token=AUDITOR_TOKEN,
    )


def test_every_kind_of_step_has_its_handler() -> None:
    assert set(HANDLERS) == {Note, *STEPS}
    for kind, handler in HANDLERS.items():
        assert handler_for(kind.model_construct()) is handler


def test_a_step_of_no_known_kind_is_an_error_naming_its_field() -> None:
    with pytest.raises(StepError, match=r"^teleport: no handler for this kind of step \(Teleport"):
        handler_for(Teleport(teleport="moon"))


@pytest.mark.anyio
async def test_a_step_of_no_known_kind_fails_the_story_at_that_step(state_dir: Path) -> None:
    story = publish_only().model_copy(
        update={"steps": [Note(note="first"), Teleport(teleport="moon"), Note(note="never")]}
    )
    async with in_process_line(["publish"], state_dir) as line:
        told = runner(story, line)
        timeline = await told.run()
    assert told.failures == [
        "step 2 (teleport to moon): teleport: no handler for this kind of step (Teleport)"
    ]
    assert [(entry.number, entry.ok) for entry in timeline] == [(0, None), (1, None), (2, False)]


async def started(line: LineUnderTest) -> Run:
    """The handlers' view of a line, its timeline begun as a story's is."""
    steps = runner(publish_only(), line).context
    await steps.recorder.record(0, "start", "")
    return steps


@pytest.mark.anyio
async def test_a_request_saves_what_it_is_told_and_a_read_leaves_the_audit_standing(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        run = await started(line)
        before = run.line.changes
        create = Request(
            do="POST publish /providers", body=builders.provider(), save={"code": "code"}
        )
        await request(run, 1, create)
        assert run.variables.saved == {"code": "2FR"}
        assert run.line.changes == before + 1  # a write: the next audit is taken afresh
        read = Request(do=f"GET publish {PROVIDERS}/${{code}}", status=200)
        await request(run, 2, read)
        assert run.line.changes == before + 1
        with pytest.raises(StepError, match="publish answered 404"):
            await request(run, 3, Request(do=f"GET publish {PROVIDERS}/9ZZ"))
    written, answered = run.recorder.timeline[1:]
    assert (written.number, written.changed, written.ok) == (1, "201 Created; saved code", None)
    assert (answered.changed, answered.ok, answered.checks) == (
        "200 OK",
        True,
        [Check(True, "answered 200")],
    )
    assert run.recorder.failures == []


@pytest.mark.anyio
async def test_a_fault_says_how_the_service_misbehaves_until_it_is_cleared(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        run = await started(line)
        await fault(run, 1, Fault(fault="fail", service="publish", times=2))
        failing = await line.clients["publish"].get(PROVIDERS)
        await clear_faults(run, 2, ClearFaults(clear_faults="publish"))
        behaving = await line.clients["publish"].get(PROVIDERS)
    assert failing.status_code == 503
    assert behaving.status_code == 200
    assert [entry.changed for entry in run.recorder.timeline[1:]] == [
        "publish fails every request with 503, 2 times",
        "publish behaves again",
    ]
