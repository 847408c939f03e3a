"""A study file: its workload, span, scale, what-ifs and calendar of faults, checked up front."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import AfterValidator, BaseModel, Field, ValidationError, model_validator

from serviceline.builtins import BuiltinFiles
from serviceline.model.lines import Size, current_line
from serviceline.model.topology import Topology, edge_name
from serviceline.runtime.clock import ClockError, parse_duration
from serviceline.runtime.faults import FaultKind
from serviceline.runtime.settings import CLOCK_START
from serviceline.scenarios.spec import (
    Moment,
    ServiceName,
    Strict,
    format_duration,
    problem,
)

# a recruitment cycle: October to October
CYCLE = timedelta(days=365)
# "down" stops the service's process for the window; the others are /admin/faults kinds
CalendarKind = Literal[
    "down",
    "fail",
    "slow",
    "drop_pages",
    "duplicate_pages",
    "reorder_pages",
    "delay_pages",
    "disk_full",
    "read_only",
]
assert set(CalendarKind.__args__) - {"down"} <= {k.value for k in FaultKind}  # type: ignore[attr-defined]


class StudyError(ValueError):
    """Everything wrong with a study, one message a problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def parse_span(text: str) -> timedelta:
    """A duration as the clock reads it (`3d`, `12w`), or years: `1y` is a cycle of 365 days."""
    years = re.fullmatch(r"\s*(\d+)\s*y\s*", text)
    if years:
        if int(years.group(1)) < 1:
            raise ValueError("give at least 1y")
        return CYCLE * int(years.group(1))
    try:
        return parse_duration(text)
    except ClockError as error:
        raise ValueError(f"{str(error).removeprefix('duration ')}, or years such as 1y") from None


def _span(text: str) -> str:
    parse_span(text)
    return text


def _interval(text: str) -> str:
    try:
        parse_duration(text)
    except ClockError as error:
        raise ValueError(str(error).removeprefix("duration ")) from None
    return text


def _cron(text: str) -> str:
    if not croniter.is_valid(text):
        raise ValueError(f"{text!r} is not a cron schedule such as '0 9 * * 2' (Tuesdays 09:00)")
    return text


def _workload(text: str) -> str:
    try:
        current_line().workloads.check(text)
    except ValueError as error:
        raise ValueError(str(error)) from None
    return text.strip()


def _override(value: str) -> str:
    try:
        current_line().topology.with_overrides({"*": value})
    except ValueError as error:
        raise ValueError(str(error).removeprefix("*: ")) from None
    return value


Span = Annotated[str, AfterValidator(_span)]
Interval = Annotated[str, AfterValidator(_interval)]
Cron = Annotated[str, AfterValidator(_cron)]
Workload = Annotated[str, AfterValidator(_workload)]
Override = Annotated[str, AfterValidator(_override)]
EdgePattern = Annotated[str, AfterValidator(edge_name)]


class CalendarFault(Strict):
    """A fault that recurs: from each moment the cron schedule names, for `lasting`."""

    service: ServiceName
    kind: CalendarKind = "fail"
    every: Cron
    lasting: Interval
    status: int | None = Field(None, ge=400, le=599)
    seconds: float | None = Field(None, ge=0, le=600)
    edge: EdgePattern | None = None

    def label(self) -> str:
        return f"{self.service} {self.kind} for {self.lasting} at {self.every!r}"

    def windows(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Each window this fault is on, from its cron moments in [start, end)."""
        lasting = parse_duration(self.lasting)
        moments = croniter(self.every, start - timedelta(seconds=1))
        found = []
        while (begins := moments.get_next(datetime)) < end:
            found.append((begins, min(begins + lasting, end)))
        return found


class Variant(Strict):
    """What one arm of a comparison reads differently, on top of the study's own choices."""

    title: str = ""
    overrides: dict[EdgePattern, Override] = Field(default_factory=dict)
    faults: list[CalendarFault] | None = None  # None: the study's own calendar


def _folder_name(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) is None:
        raise ValueError(f"{name!r}: use letters, digits, ., - and _ (it names the folder)")
    return name


FolderName = Annotated[str, AfterValidator(_folder_name)]


class Study(Strict):
    name: FolderName
    title: str
    description: str = ""
    workload: Workload = "default"
    size: Size = Size.SMALL
    seed: int = 1
    # when the span begins on the simulated clock; by default the line's own start
    start: Moment | None = None
    # how long it runs (default a whole cycle), or until `end`
    span: Span | None = None
    end: Moment | None = None
    # the services to start; by default the whole line
    services: list[ServiceName] | None = None
    sample_every: Interval = "1d"
    # edge name or glob (publish.*.apply) -> mechanism[@schedule]
    overrides: dict[EdgePattern, Override] = Field(default_factory=dict)
    faults: list[CalendarFault] = Field(default_factory=list)
    variants: dict[FolderName, Variant] = Field(default_factory=dict)

    @model_validator(mode="after")
    def one_span(self) -> Study:
        if self.span is not None and self.end is not None:
            raise ValueError("span and end: give one, not both")
        if self.end is not None and self.end <= self.began():
            raise ValueError(f"end: {self.end.isoformat()} is not after the start")
        calendars = [self.faults, *(v.faults or [] for v in self.variants.values())]
        absent = sorted({f.service for c in calendars for f in c} - set(self.needed()))
        if absent:
            raise ValueError(f"faults: {', '.join(absent)} is not among the study's services")
        unseeded = [name for name in current_line().seeded if name not in self.needed()]
        if unseeded:
            raise ValueError(f"services: the seed writes to {', '.join(unseeded)}: run them too")
        return self

    def began(self) -> datetime:
        return self.start or CLOCK_START

    def ends(self) -> datetime:
        if self.end is not None:
            return self.end
        return self.began() + (parse_span(self.span) if self.span else CYCLE)

    def needed(self) -> list[str]:
        wanted = set(self.services) if self.services is not None else None
        return [
            s.name for s in current_line().topology.services if wanted is None or s.name in wanted
        ]

    def span_text(self) -> str:
        return format_duration((self.ends() - self.began()).total_seconds())


@dataclass(frozen=True)
class Arm:
    """One run of a study: the overrides and faults it runs under, resolved edge by edge."""

    name: str
    title: str
    overrides: dict[str, str]
    faults: list[CalendarFault]
    # the exact edges it reads another way, as LineConfig.edge_overrides takes them
    applied: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    # edges an override named that cannot be read that way, and why
    refused: dict[str, str] = field(default_factory=dict)


def resolve(
    name: str,
    title: str,
    overrides: Mapping[str, str],
    faults: list[CalendarFault],
    topology: Topology,
) -> Arm:
    """Each edge an override's name or glob matches, read that way where it can be."""
    arm = Arm(name, title, dict(overrides), faults)
    for pattern, how in overrides.items():
        for edge in topology.edges:
            if not fnmatch.fnmatchcase(edge.name, pattern):
                continue
            try:
                changed = topology.with_overrides({edge.name: how}).edge(edge.name)
            except ValueError as error:
                arm.refused[edge.name] = str(error).removeprefix(f"{edge.name}: ")
                arm.applied.pop(edge.name, None)
                continue
            arm.refused.pop(edge.name, None)
            arm.applied[edge.name] = how
            moved = (changed.mechanism, changed.schedule, changed.follow) != (
                edge.mechanism,
                edge.schedule,
                edge.follow,
            )
            if moved and edge.name not in arm.changed:
                arm.changed.append(edge.name)
            elif not moved and edge.name in arm.changed:
                arm.changed.remove(edge.name)
    return arm


def arms(study: Study, chosen: list[str] | None = None) -> list[Arm]:
    """The study as written, or each chosen variant of it, with its overrides resolved."""
    if not chosen:
        return [
            resolve(study.name, study.title, study.overrides, study.faults, current_line().topology)
        ]
    found = []
    for name in chosen:
        variant = study.variants[name]
        overrides = {**study.overrides, **variant.overrides}
        faults = study.faults if variant.faults is None else variant.faults
        found.append(
            resolve(name, variant.title or name, overrides, faults, current_line().topology)
        )
    return found


def parse(raw: object, source: str, default_name: str | None = None) -> Study:
    """A study from its YAML's data; StudyError lists every problem with its field."""
    if not isinstance(raw, Mapping):
        raise StudyError(source, ["a study is a mapping with a title"])
    body = dict(raw)
    if default_name is not None:
        body.setdefault("name", default_name)
    try:
        study = Study.model_validate(body)
    except ValidationError as error:
        raise StudyError(source, _problems(error, Study)) from error
    unmatched = [
        f"{where}: {pattern!r} names no edge (see `serviceline topology`)"
        for where, overrides in _all_overrides(study)
        for pattern in overrides
        if not any(
            fnmatch.fnmatchcase(edge.name, pattern) for edge in current_line().topology.edges
        )
    ]
    if unmatched:
        raise StudyError(source, unmatched)
    return study


def _all_overrides(study: Study) -> Iterator[tuple[str, Mapping[str, str]]]:
    yield "overrides", study.overrides
    for name, variant in study.variants.items():
        yield f"variants.{name}.overrides", variant.overrides


def _problems(error: ValidationError, model: type[BaseModel]) -> list[str]:
    return [problem(tuple(e["loc"]), e["msg"], model) for e in error.errors()]


def _parse_file(raw: Any, source: str, name: str) -> Study:
    return parse(raw, source, default_name=name)


BUILTINS = BuiltinFiles("study", lambda line: line.studies, _parse_file, StudyError)
builtin_names = BUILTINS.names
load_file = BUILTINS.load_file
load = BUILTINS.load
