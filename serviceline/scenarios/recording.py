"""The timeline a run records, entry by entry, and the result it writes for the dashboard."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from serviceline.runtime.upstream import UpstreamError
from serviceline.scenarios.auditing import Audit, Audits, EdgeLag
from serviceline.scenarios.line import Line
from serviceline.scenarios.variables import Variables
from serviceline.stack.control import ControlError

LAST_RUN = "last.json"


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


@dataclass
class Entry:
    """One line of the timeline: where the clock stood after a step, and what it changed."""

    number: int
    at: datetime
    step: str
    changed: str
    drift: dict[str, dict[str, int]]
    lag: dict[str, EdgeLag]
    unaudited: dict[str, str]
    ok: bool | None = None
    checks: list[Check] = field(default_factory=list)
    took_seconds: float | None = None


@dataclass
class Result:
    scenario: str
    title: str
    verdict: str
    seed: int | None
    overrides: dict[str, str]
    settings: dict[str, dict[str, str]]
    services: list[str]
    timeline: list[Entry]
    failures: list[str]
    elapsed_seconds: float = 0.0
    # each edge's longest propagation, measured over its consumer's applied log
    peak_lag_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(json.dumps(asdict(self), default=_iso))
        if self.timeline:
            body["started_at"] = body["timeline"][0]["at"]
            body["ended_at"] = body["timeline"][-1]["at"]
        return body


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)


Report = Callable[[Entry], None]


class Recorder:
    """Adds an entry after each step, with the line's time and audit then, and keeps failures."""

    def __init__(
        self, line: Line, audits: Audits, variables: Variables, report: Report | None = None
    ) -> None:
        self.line = line
        self.audits = audits
        self.variables = variables
        self.report = report or (lambda _entry: None)
        self.timeline: list[Entry] = []
        self.failures: list[str] = []
        self.pending: Entry | None = None

    async def record(
        self,
        number: int,
        step: str,
        changed: str,
        checks: Sequence[Check] = (),
        *,
        ok: bool | None = None,
        took: timedelta | None = None,
    ) -> Entry:
        await self.line.reap(wait=False)
        try:
            audit = await self.audits.now()
            at = await self.line.control.now()
        except (ControlError, UpstreamError, httpx.HTTPError):
            audit, at = Audit({}, {}, {}), self.timeline[-1].at if self.timeline else _epoch()
        self.variables.clock(at)
        entry = Entry(
            number,
            at,
            step,
            changed,
            audit.drift,
            audit.lag,
            audit.unaudited,
            ok,
            list(checks),
            took.total_seconds() if took is not None else None,
        )
        self.flush()
        self.timeline.append(entry)
        # reported when the next entry comes, or the step ends: the step may add a check to it
        self.pending = entry
        return entry

    def flush(self) -> None:
        if self.pending is not None:
            self.report(self.pending)
            self.pending = None

    async def checked(
        self,
        number: int,
        step: str,
        changed: str,
        checks: Sequence[Check],
        *,
        took: timedelta | None = None,
    ) -> None:
        """An entry whose checks decide it, each failed one also a failure of the run."""
        ok = all(check.ok for check in checks) if checks else None
        self.failures += [f"step {number} ({step}): {c.text}" for c in checks if not c.ok]
        await self.record(number, step, changed, checks, ok=ok, took=took)


def write_last(result: Result, state_dir: Path, body: Mapping[str, Any] | None = None) -> Path:
    path = state_dir / "scenarios" / LAST_RUN
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body or result.to_json(), indent=2), encoding="utf-8")
    return path


def write_comparison(baseline: Result, what_if: Result, how: str, state_dir: Path) -> Path:
    """The last run as the comparison it was: the what-if beside the line as it is."""
    compared = {"what_if": how, "baseline": baseline.to_json()}
    return write_last(what_if, state_dir, {**what_if.to_json(), "compared": compared})
