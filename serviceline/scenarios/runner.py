"""Runs a scenario against a line: every step, the drift after it, each check, a verdict."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serviceline.model.lines import current_line
from serviceline.runtime.upstream import UpstreamError
from serviceline.scenarios.auditing import Audits, watched
from serviceline.scenarios.errors import RunError, StepError
from serviceline.scenarios.expectations import Checker
from serviceline.scenarios.line import Line, Stack, attached_stack, own_stack
from serviceline.scenarios.recording import Check, Entry, Recorder, Report, Result, write_last
from serviceline.scenarios.spec import Scenario, Step
from serviceline.scenarios.steps import Run, handler_for
from serviceline.scenarios.variables import Variables
from serviceline.stack.control import ControlError
from serviceline.stack.launcher import LineConfig


class Runner:
    """Tells a scenario on a line: its start, its seed, then each step by its kind's handler."""

    def __init__(
        self,
        scenario: Scenario,
        stack: Stack,
        *,
        api_token: str,
        admin_token: str,
        auditor_token: str,
        seed: int | None = None,
        report: Report | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        tokens = {"api": api_token, "admin": admin_token, "auditor": auditor_token}
        line = Line(stack, tokens, scenario.needed())
        audits = Audits(line, watched(scenario))
        variables = Variables()
        self.recorder = Recorder(line, audits, variables, report)
        self.context = Run(line, audits, variables, self.recorder, Checker(line, audits, variables))
        self.peak_lag_seconds: dict[str, float] = {}

    @property
    def timeline(self) -> list[Entry]:
        return self.recorder.timeline

    @property
    def failures(self) -> list[str]:
        return self.recorder.failures

    async def run(self) -> list[Entry]:
        try:
            await self._tell()
        finally:
            self.recorder.flush()
        if self.timeline:
            until = max(entry.at for entry in self.timeline)
            self.peak_lag_seconds = await self.context.audits.peak_lags(self.timeline[0].at, until)
        return self.timeline

    async def _tell(self) -> None:
        line, record = self.context.line, self.recorder.record
        start = self.scenario.start
        if start is not None and await line.control.now() < start:
            await line.advance_to(start)  # a line started elsewhere, still before the story
        began = await record(0, "start", f"running {', '.join(line.running)}")
        self.context.audits.baseline = {name: dict(counts) for name, counts in began.drift.items()}
        if start is not None and self.timeline[-1].at != start:
            self.failures.append(f"the line's clock is past the scenario's start ({start})")
            return
        if self.seed is not None:
            await self._seed(self.seed)
        for number, step in enumerate(self.scenario.steps, start=1):
            try:
                await self._step(number, step)
            except (StepError, ControlError, UpstreamError, httpx.HTTPError) as error:
                self.failures.append(f"step {number} ({step.label()}): {error}")
                await record(number, step.label(), str(error), ok=False)
                return

    async def _seed(self, seed: int) -> None:
        assert self.scenario.seed is not None
        line, size = self.context.line, self.scenario.seed.size
        counts = await current_line().seed(
            line.running, line.control, line.tokens["api"], size, seed
        )
        line.changed()
        shown = ", ".join(f"{n:,} {what}" for what, n in counts.items())
        await self.recorder.record(0, f"seed {size.value} (seed {seed})", shown)

    async def _step(self, number: int, step: Step) -> None:
        """The step by its handler; then whether the services meant to die did, and only they."""
        line = self.context.line
        line.died = set()
        await handler_for(step)(self.context, number, step)
        await line.reap(wait=bool(set(step.dies) - line.died))
        missing = sorted(set(step.dies) - line.died)
        unplanned = sorted(line.died - set(step.dies))
        if unplanned:
            raise StepError(f"{', '.join(unplanned)} exited unexpectedly")
        if step.dies:
            last = self.timeline[-1]
            ok = not missing
            text = (
                f"{', '.join(sorted(line.died))} died as planned"
                if ok
                else f"expected {', '.join(missing)} to die; still running"
            )
            last.checks.append(Check(ok, text))
            last.ok = ok if last.ok is None else last.ok and ok
            if not ok:
                self.failures.append(f"step {number} ({step.label()}): {text}")
        self.recorder.flush()


@dataclass(frozen=True)
class LineOptions:
    """Where a run's own line lives and listens, and the tokens it is driven with."""

    state_dir: Path
    port_offset: int = 0
    admin_token: str = "admin-secret"
    api_token: str = "api-secret"
    auditor_token: str = "auditor-secret"
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class Options(LineOptions):
    """How to run a scenario: on a line of its own (the default) or on one already running."""

    attach: bool = False
    overrides: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    seed: int | None = None


def service_settings(scenario: Scenario, options: Options) -> dict[str, dict[str, str]]:
    """Each service's extra settings: the scenario's, then the run's, and its start time."""
    merged: dict[str, dict[str, str]] = {}
    for name in scenario.needed():
        values = {**scenario.settings.get(name, {}), **options.settings.get(name, {})}
        if scenario.start is not None:
            values["clock_start"] = scenario.start.isoformat()
        if values:
            merged[name] = values
    return merged


async def run_scenario(
    scenario: Scenario, options: Options, report: Report | None = None
) -> Result:
    """Run the scenario, write `<state_dir>/scenarios/last.json`, return the verdict."""
    began = time.monotonic()
    settings = service_settings(scenario, options)
    seed = (
        options.seed
        if options.seed is not None
        else (scenario.seed.seed if scenario.seed else None)
    )
    names = scenario.needed()
    runner_args: dict[str, Any] = {
        "api_token": options.api_token,
        "admin_token": options.admin_token,
        "auditor_token": options.auditor_token,
        "seed": seed,
        "report": report,
    }
    if options.attach:
        if options.overrides or options.settings or scenario.settings:
            raise RunError(
                "a line started elsewhere runs with its own settings: edge overrides and service "
                "settings need the scenario's own line (run it without --url)"
            )
        async with attached_stack(
            options.host, options.port_offset, names, current_line().topology
        ) as stack:
            runner = Runner(scenario, stack, **runner_args)
            timeline = await runner.run()
    else:
        home = options.state_dir / "scenarios" / scenario.name
        shutil.rmtree(home, ignore_errors=True)
        config = LineConfig(
            home,
            host=options.host,
            admin_token=options.admin_token,
            api_token=options.api_token,
            auditor_token=options.auditor_token,
            port_offset=options.port_offset,
            edge_overrides=dict(options.overrides),
            service_settings=settings,
        )
        async with own_stack(config, names, current_line().topology) as process_stack:
            runner = Runner(scenario, process_stack, **runner_args)
            timeline = await runner.run()
    result = Result(
        scenario=scenario.name,
        title=scenario.title,
        verdict="fail" if runner.failures else "pass",
        seed=seed,
        overrides=dict(options.overrides),
        settings=settings,
        services=names,
        timeline=timeline,
        failures=runner.failures,
        elapsed_seconds=round(time.monotonic() - began, 1),
        peak_lag_seconds=runner.peak_lag_seconds,
    )
    write_last(result, options.state_dir)
    return result
