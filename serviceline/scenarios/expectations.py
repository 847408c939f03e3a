"""Checking what a step expects: drift, lag, convergence, job counts and values the API gives."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from serviceline.scenarios.auditing import Audit, Audits, EdgeLag
from serviceline.scenarios.line import Line
from serviceline.scenarios.recording import Check
from serviceline.scenarios.spec import UNSETTLED, Bound, Expectations, Value, lookup
from serviceline.scenarios.variables import Variables


def bounded(label: str, bound: Bound, found: float | None, unknown: str = "") -> Check:
    """Whether `found` is within `bound`, said either way."""
    if found is None:
        return Check(False, f"{label}: not known ({unknown})")
    if bound.holds(found):
        return Check(True, f"{label} {bound.show(found)}")
    return Check(False, f"{label}: expected {bound}, found {bound.show(found)}")


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


class Checker:
    """Each expectation as a check, against the counts the story added to the line's own."""

    def __init__(self, line: Line, audits: Audits, variables: Variables) -> None:
        self.line = line
        self.audits = audits
        self.variables = variables

    async def check(self, expected: Expectations) -> list[Check]:
        checks: list[Check] = []
        audit = Audit({}, {}, {})
        if expected.drift or expected.lag or expected.converged:
            audit = await self.audits.now()
        own, why = self.audits.own, self.audits.why
        for name, classes in expected.drift.items():
            counts = audit.drift.get(name)
            for drift, bound in classes.items():
                before = own(name, drift)
                found = None if counts is None else counts[drift] - before
                check = bounded(f"{name} {drift}", bound, found, why(audit, name))
                checks.append(
                    Check(check.ok, f"{check.text}, besides the line's own {before}")
                    if before and found is not None
                    else check
                )
        for name, lag in expected.lag.items():
            known = audit.lag.get(name, EdgeLag(None, None, None))
            wanted: list[tuple[str, Bound | None, float | None]] = [
                ("changes behind", lag.changes, known.changes),
                ("oldest change", lag.oldest, known.oldest_age_seconds),
                ("since last sync", lag.since_sync, known.since_sync_seconds),
            ]
            checks += [
                bounded(f"{name} {what}", bound, found, why(audit, name))
                for what, bound, found in wanted
                if bound is not None
            ]
        for name in expected.converged:
            counts = audit.drift.get(name)
            if counts is None:
                checks.append(Check(False, f"{name}: not audited ({why(audit, name)})"))
                continue
            unsettled = ("conflicting",) if name in self.line.topology.conflicts() else UNSETTLED
            left = {
                drift: counts[drift] - own(name, drift)
                for drift in unsettled
                if counts[drift] > own(name, drift)
            }
            checks.append(
                Check(True, f"{name} converged")
                if not left
                else Check(False, f"{name} not converged: " + _counts(left))
            )
        for service, jobs in expected.jobs.items():
            for job, count in jobs.items():
                runs = [j for j in self.line.jobs if j["service"] == service and j["job"] == job]
                tally: list[tuple[str, Bound | None, float]] = [
                    ("runs", count.ran, len(runs)),
                    ("failures", count.failed, sum(not j["ok"] for j in runs)),
                ]
                checks += [
                    bounded(f"{service} {job} {what}", bound, found)
                    for what, bound, found in tally
                    if bound is not None
                ]
        for value in expected.value:
            checks.append(await self.value(value))
        return checks

    async def value(self, value: Value) -> Check:
        label = value.label()
        filled = Value.model_validate(self.variables.fill(value.model_dump()))
        if filled.service not in self.line.running:
            return Check(False, f"{label}: {filled.service} is not running")
        answer = await self.line.call(
            filled.service, "GET", filled.path, token=filled.token, params=filled.params
        )
        if answer.status_code != filled.status:
            return Check(
                False,
                f"{label}: expected status {filled.status}, found {answer.status_code}: "
                f"{answer.text[:200]}",
            )
        try:
            found: Any = answer.json()
        except ValueError:
            found = answer.text
        if filled.field is not None:
            try:
                found = lookup(found, filled.field)
            except LookupError as error:
                return Check(False, f"{label}: {error}")
        if "equals" in value.model_fields_set and found != filled.equals:
            wanted, shown = json.dumps(filled.equals), json.dumps(found)
            return Check(False, f"{label}: expected {wanted}, found {shown}")
        shown = found if isinstance(found, str) else json.dumps(found)
        if filled.contains is not None and filled.contains not in shown:
            return Check(
                False, f"{label}: expected to contain {filled.contains!r}: {shown[:200]!r}"
            )
        if "equals" in value.model_fields_set:
            return Check(True, f"{label} = {json.dumps(found)}")
        if filled.contains is not None:
            return Check(True, f"{label} mentions {filled.contains!r}")
        return Check(True, f"{label} answered {answer.status_code}")
