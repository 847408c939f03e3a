"""A scenario file: its seed, its services and its steps, checked before anything starts."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)

from serviceline.audit.findings import CLASSES
from serviceline.builtins import BuiltinFiles
from serviceline.model.lines import Size, current_line
from serviceline.model.topology import Kind, edge_name
from serviceline.runtime.clock import ClockError, parse_duration

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# what every step may use without saving it first
BUILT_IN_VARIABLES = frozenset({"now", "today"})
FaultKind = Literal[
    "fail",
    "slow",
    "drop_pages",
    "duplicate_pages",
    "reorder_pages",
    "delay_pages",
    "die_mid_batch",
    "disk_full",
    "read_only",
    "edit_mid_read",
]
# the classes a sync heals: a converged copy holds none of them
UNSETTLED = ("stale", "missing")


class ScenarioError(ValueError):
    """Everything wrong with a scenario, one message a problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def format_duration(seconds: float) -> str:
    """`1d3h`, `2h1m`, `45s`: the shortest spelling parse_duration reads back."""
    left = round(seconds)
    if left == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _seconds(text: str) -> float:
    if re.fullmatch(r"0+[smhdw]?", text.strip()):
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except ClockError as error:
        raise ValueError(str(error).removeprefix("duration ")) from error


COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Bound:
    """What a number must be: `3` (exactly), or `<= 3`, `> 0`; a span reads `>= 6h`."""

    op: str
    value: float
    span: bool = False

    def holds(self, found: float) -> bool:
        return COMPARE[self.op](found, self.value)

    def show(self, value: float) -> str:
        return format_duration(value) if self.span else f"{value:g}"

    def __str__(self) -> str:
        shown = self.show(self.value)
        return shown if self.op == "==" else f"{self.op} {shown}"

    @classmethod
    def parse(cls, raw: object, *, span: bool) -> Bound:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise ValueError(
                f"give a {'duration' if span else 'number'}, e.g. {cls._example(span)}"
            )
        text = str(raw).strip()
        op = next((o for o in sorted(COMPARE, key=len, reverse=True) if text.startswith(o)), "==")
        number = text.removeprefix(op).strip() if text.startswith(op) else text
        if span:
            return cls(op, _seconds(number), span=True)
        try:
            return cls(op, float(number))
        except ValueError as error:
            raise ValueError(
                f"{text!r} is not a number or a bound like {cls._example(span)}"
            ) from error

    @staticmethod
    def _example(span: bool) -> str:
        return "'>= 6h' or '10m'" if span else "'<= 3' or 0"


Count = Annotated[
    Bound, PlainValidator(lambda raw: Bound.parse(raw, span=False)), PlainSerializer(str)
]
Span = Annotated[
    Bound, PlainValidator(lambda raw: Bound.parse(raw, span=True)), PlainSerializer(str)
]


def _duration(text: str) -> str:
    _seconds(text)
    return text


def _service(name: str) -> str:
    names = [s.name for s in current_line().topology.services]
    if name not in names:
        raise ValueError(f"no service {name!r}; services: {', '.join(names)}")
    return name


def _edge(name: str) -> str:
    name = edge_name(name)
    if name not in {edge.name for edge in current_line().topology.edges}:
        raise ValueError(f"no edge {name!r}; see `serviceline topology`")
    return name


def _audited(name: str) -> str:
    """An edge or a comparison of two services that create the same thing."""
    if name in current_line().topology.conflicts():
        return name
    try:
        return _edge(name)
    except ValueError as error:
        raise ValueError(
            f"{error}; or a comparison: {', '.join(current_line().topology.conflicts())}"
        ) from None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Duration = Annotated[str, AfterValidator(_duration)]
ServiceName = Annotated[str, AfterValidator(_service)]
EdgeName = Annotated[str, AfterValidator(_edge)]
AuditedName = Annotated[str, AfterValidator(_audited)]
Moment = Annotated[datetime, AfterValidator(_utc)]
DriftClass = Literal["in_sync", "stale", "diverged", "orphaned", "missing", "conflicting"]
assert set(DriftClass.__args__) == set(CLASSES)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _listed(raw: object) -> object:
    return [raw] if isinstance(raw, Mapping) else raw


class Value(Strict):
    """A service's answer to a GET: its status, and a field of it."""

    service: ServiceName
    path: str
    params: dict[str, Any] = Field(default_factory=dict)
    token: Literal["api", "admin", "auditor", "none"] = "api"
    status: int = 200
    field: str | None = None
    equals: Any = None
    contains: str | None = None

    def label(self) -> str:
        shown = f"{self.service} {self.path}"
        return f"{shown} {self.field}" if self.field else shown


class Lag(Strict):
    changes: Count | None = None
    oldest: Span | None = None
    since_sync: Span | None = None


class JobCount(Strict):
    ran: Count | None = None
    failed: Count | None = None


class Expectations(Strict):
    """What must hold now: drift by edge and class, values, lag, jobs run, convergence."""

    drift: dict[AuditedName, dict[DriftClass, Count]] = Field(default_factory=dict)
    value: Annotated[list[Value], BeforeValidator(_listed)] = Field(default_factory=list)
    lag: dict[EdgeName, Lag] = Field(default_factory=dict)
    jobs: dict[ServiceName, dict[str, JobCount]] = Field(default_factory=dict)
    converged: list[AuditedName] = Field(default_factory=list)

    @model_validator(mode="after")
    def something(self) -> Expectations:
        if not (self.drift or self.value or self.lag or self.jobs or self.converged):
            raise ValueError("expect one or more of drift, value, lag, jobs, converged")
        return self

    def audited(self) -> set[str]:
        return {*self.drift, *self.lag, *self.converged}

    def services(self) -> set[str]:
        return {v.service for v in self.value} | set(self.jobs)

    def observed(self) -> set[str]:
        """Every service whose records these expectations read."""
        return self.services().union(*(_ends(name) for name in self.audited()))


class Step(Strict):
    """One line of the story; `dies` names services the step is meant to kill."""

    action: ClassVar[tuple[str, ...]]
    note: str | None = None
    dies: list[ServiceName] = Field(default_factory=list)

    def label(self) -> str:
        return self.note or ""

    def services(self) -> set[str]:
        """The services the step talks to or acts on."""
        return set(self.dies)

    def audited(self) -> set[str]:
        """The edges and comparisons it names."""
        return set()


class Note(Step):
    action = ("note",)
    note: str


class Request(Step):
    """An action on a service through its own API: `do: POST publish /providers`."""

    action = ("do",)
    do: str
    body: Any = None
    params: dict[str, Any] = Field(default_factory=dict)
    token: Literal["api", "admin", "auditor", "none"] = "api"
    status: int | None = None
    save: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def readable(self) -> Request:
        self.parts()
        bad = [name for name in self.save if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)]
        if bad:
            raise ValueError(f"save: {bad[0]!r} is not a variable name (letters, digits, _)")
        return self

    def parts(self) -> tuple[str, str, str]:
        words = self.do.split(maxsplit=2)
        if len(words) != 3 or words[0] not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise ValueError(
                f"do: {self.do!r} is not 'METHOD SERVICE /path', e.g. 'POST publish /providers'"
            )
        method, service, path = words
        _service(service)
        if not path.startswith("/"):
            raise ValueError(f"do: the path {path!r} must start with /")
        return method, service, path

    def label(self) -> str:
        return self.do

    def services(self) -> set[str]:
        return super().services() | {self.parts()[1]}


class Advance(Step):
    """Move the clock: `advance: 10m`, or `advance_to: <time>`; `every` samples on the way."""

    action = ("advance", "advance_to")
    advance: Duration | None = None
    advance_to: Moment | None = None
    every: Duration | None = None

    @model_validator(mode="after")
    def one_target(self) -> Advance:
        if (self.advance is None) == (self.advance_to is None):
            raise ValueError("give advance (how far) or advance_to (a time), not both")
        return self

    def label(self) -> str:
        where = (
            f"advance {self.advance}"
            if self.advance is not None
            else f"advance to {self.advance_to:%a %d %b %H:%M}"
        )
        return f"{where} every {self.every}" if self.every else where


class Sync(Step):
    """Run one edge now, off schedule."""

    action = ("sync",)
    sync: EdgeName
    full: bool = False

    def label(self) -> str:
        return f"sync {self.sync}" + (" (full)" if self.full else "")

    def services(self) -> set[str]:
        edge = current_line().topology.edge(self.sync)
        return super().services() | {edge.owner, edge.consumer}

    def audited(self) -> set[str]:
        return {self.sync}


class RunJob(Step):
    action = ("job",)
    job: str
    service: ServiceName

    def label(self) -> str:
        return f"run {self.service} {self.job}"

    def services(self) -> set[str]:
        return super().services() | {self.service}


class Fault(Step):
    """Make a service misbehave until a time, for a span, or until its faults are cleared."""

    action = ("fault",)
    fault: FaultKind
    service: ServiceName
    lasting: Duration | None = Field(default=None, alias="for")
    ends: Moment | None = None
    status: int | None = None
    seconds: float | None = None
    edge: EdgeName | None = None
    times: int | None = Field(default=None, ge=1)
    # edit_mid_read: the read whose answer waits for `write`, made on the service's own API
    path: str | None = None
    write: dict[str, Any] | None = None
    reader: ServiceName | None = None

    @model_validator(mode="after")
    def on_its_own_edge(self) -> Fault:
        if self.lasting is not None and self.ends is not None:
            raise ValueError("for, ends: give one of them (or neither: until cleared)")
        if (
            self.edge is not None
            and current_line().topology.edge(self.edge).consumer != self.service
        ):
            raise ValueError(f"edge: {self.edge} is not one of {self.service}'s copies")
        return self

    def label(self) -> str:
        how = f"fault {self.fault} on {self.service}"
        if self.edge:
            how += f" ({self.edge})"
        return how + (f" for {self.lasting}" if self.lasting else "")

    def services(self) -> set[str]:
        return super().services() | {self.service}


class ClearFaults(Step):
    action = ("clear_faults",)
    clear_faults: ServiceName

    def label(self) -> str:
        return f"clear faults on {self.clear_faults}"

    def services(self) -> set[str]:
        return super().services() | {self.clear_faults}


class Stop(Step):
    action = ("stop",)
    stop: ServiceName
    kill: bool = False

    def label(self) -> str:
        return f"{'kill' if self.kill else 'stop'} {self.stop}"

    def services(self) -> set[str]:
        return super().services() | {self.stop}


class Start(Step):
    action = ("start",)
    start: ServiceName

    def label(self) -> str:
        return f"start {self.start}"

    def services(self) -> set[str]:
        return super().services() | {self.start}


class ExpireCursors(Step):
    """Prune an owner's whole change log: every consumer's feed cursor into it expires."""

    action = ("expire_cursors",)
    expire_cursors: ServiceName

    def label(self) -> str:
        return f"expire every cursor into {self.expire_cursors}'s feed"

    def services(self) -> set[str]:
        return super().services() | {self.expire_cursors}


class Expect(Step):
    action = ("expect",)
    expect: Expectations

    def label(self) -> str:
        return self.note or "expect"

    def services(self) -> set[str]:
        return super().services() | self.expect.services()

    def audited(self) -> set[str]:
        return self.expect.audited()


class Until(Step):
    """Move the clock from job to job until the expectations hold; fail after `within`.

    What the expectations read changes only when a job runs in a service they read, or in one
    that commands it, so each check falls when the next such job is due; `step` checks at least
    that often, for what changes with time alone (a lag's age).
    """

    action = ("until",)
    until: Expectations
    within: Duration
    step: Duration | None = None
    took: Span | None = None

    def label(self) -> str:
        return self.note or "until"

    def services(self) -> set[str]:
        return super().services() | self.until.services()

    def audited(self) -> set[str]:
        return self.until.audited()


STEPS: tuple[type[Step], ...] = (
    Request,
    Advance,
    Sync,
    RunJob,
    Fault,
    ClearFaults,
    Stop,
    Start,
    ExpireCursors,
    Expect,
    Until,
)
ACTIONS = {key: kind for kind in STEPS for key in kind.action}


class Seed(Strict):
    size: Size = Size.SMALL
    seed: int = 1


def _folder_name(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name) is None:
        raise ValueError(f"{name!r}: use letters, digits, - and _ (it names the run's folder)")
    return name


class Scenario(Strict):
    name: Annotated[str, AfterValidator(_folder_name)]
    title: str
    description: str = ""
    # when the story begins on the simulated clock: every service's clock starts there
    start: Moment | None = None
    seed: Seed | None = None
    # the services to start; by default those the steps name, and both ends of every edge
    services: list[ServiceName] | None = None
    # extra settings per service, by field name (e.g. find: {read_through: "true"})
    settings: dict[ServiceName, dict[str, str]] = Field(default_factory=dict)
    # the edges and comparisons audited after each step; by default all among the services
    watch: list[AuditedName] | None = None
    steps: list[Step] = Field(default_factory=list)

    def needed(self) -> list[str]:
        """The services to start, in topology order."""
        if self.services is not None:
            wanted = set(self.services)
        elif self.seed is not None:
            wanted = {
                s.name for s in current_line().topology.services if s.kind is not Kind.RECORD_SYSTEM
            }
        else:
            wanted = set(self.settings)
            for step in self.steps:
                wanted |= step.services()
                for name in step.audited() | set(self.watch or ()):
                    wanted |= set(_ends(name))
        return [s.name for s in current_line().topology.services if s.name in wanted]

    def watched(self) -> list[str]:
        """The edges and comparisons audited after each step."""
        if self.watch is not None:
            return list(self.watch)
        running = set(self.needed())
        named = [e.name for e in current_line().topology.edges if {e.owner, e.consumer} <= running]
        return named + [
            name
            for name, ends in current_line().topology.conflicts().items()
            if set(ends) <= running
        ]


def _ends(name: str) -> tuple[str, ...]:
    if name in current_line().topology.conflicts():
        return current_line().topology.conflicts()[name]
    edge = current_line().topology.edge(name)
    return (edge.owner, edge.consumer)


def problem(loc: tuple[int | str, ...], message: str, model: type[BaseModel] | None) -> str:
    """One validation error, said as `field: message`."""
    where = ".".join(str(part) for part in loc)
    text = message.removeprefix("Value error, ")
    if text == "Extra inputs are not permitted":
        text = "unknown field"
    if text == "unknown field" and model is not None and len(loc) == 1:
        known = ", ".join(info.alias or name for name, info in model.model_fields.items())
        text = f"unknown field (known: {known})"
    return f"{where}: {text}" if where else text


def _problems(error: ValidationError, model: type[BaseModel] | None) -> list[str]:
    return [problem(tuple(e["loc"]), e["msg"], model) for e in error.errors()]


def parse_step(raw: object) -> Step:
    """One step: its action key says what kind; ValueError names the field that is wrong."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a step is a mapping such as {{advance: 10m}}, not {raw!r}")
    keys = [key for key in raw if key in ACTIONS]
    if not keys:
        if set(raw) == {"note"}:
            return Note.model_validate(raw)
        actions = ", ".join(ACTIONS)
        raise ValueError(f"no action: give one of {actions} (or only a note)")
    kinds = {ACTIONS[key] for key in keys}
    if len(kinds) > 1:
        raise ValueError(f"one action a step: found {' and '.join(keys)}")
    kind = kinds.pop()
    try:
        return kind.model_validate(raw)
    except ValidationError as error:
        raise ValueError(f"({keys[0]}) " + "; ".join(_problems(error, kind))) from error


def parse(raw: object, source: str, default_name: str | None = None) -> Scenario:
    """A scenario from its YAML's data; ScenarioError lists every problem with its step."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(source, ["a scenario is a mapping with title and steps"])
    # `x-` keys hold YAML anchors that steps merge in (`<<: *course`), as compose files do
    head = {
        key: value
        for key, value in raw.items()
        if key != "steps" and not (isinstance(key, str) and key.startswith("x-"))
    }
    if default_name is not None:
        head.setdefault("name", default_name)
    problems: list[str] = []
    try:
        scenario = Scenario.model_validate(head)
    except ValidationError as error:
        problems += _problems(error, Scenario)
        scenario = None
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.append("steps: give a list of one or more steps")
        raw_steps = []
    numbered: list[tuple[int, Step]] = []
    for number, raw_step in enumerate(raw_steps, start=1):
        try:
            numbered.append((number, parse_step(raw_step)))
        except ValueError as error:
            problems.append(f"step {number} {error}")
    if scenario is not None:
        scenario = scenario.model_copy(update={"steps": [step for _, step in numbered]})
        problems += _consistency(scenario, numbered)
    if problems or scenario is None:
        raise ScenarioError(source, problems)
    return scenario


def _consistency(scenario: Scenario, numbered: list[tuple[int, Step]]) -> list[str]:
    """Variables saved before they are used; every service and edge among those started."""
    running = set(scenario.needed())
    problems = [
        f"watch: {name} needs {service}, not among the scenario's services "
        f"({', '.join(sorted(running))})"
        for name in scenario.watch or ()
        for service in _ends(name)
        if service not in running
    ]
    known = set(BUILT_IN_VARIABLES)
    for number, step in numbered:
        used = references(step.model_dump(exclude={"save"}))
        if isinstance(step, Request):
            used |= references(list(step.save.values()))
        problems += [
            f"step {number} ({step.label()}): ${{{name}}} is not saved by an earlier step"
            for name in sorted(used - known)
        ]
        if isinstance(step, Request):
            known |= set(step.save)
        outside = sorted(step.services() - running)
        for name in sorted(step.audited()):
            outside += [s for s in _ends(name) if s not in running and s not in outside]
        problems += [
            f"step {number} ({step.label()}): {name} is not among the scenario's services "
            f"({', '.join(sorted(running))})"
            for name in outside
        ]
    return problems


def references(value: object) -> set[str]:
    """The variables `${name}` a value uses, anywhere inside it."""
    if isinstance(value, str):
        return set(VARIABLE.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(references(v) for v in value.values()), *map(references, value))
    if isinstance(value, list | tuple):
        return set().union(*(references(v) for v in value))
    return set()


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """`value` with each `${name}` filled in; a string that is only `${name}` keeps its type."""
    if isinstance(value, str):
        whole = VARIABLE.fullmatch(value)
        if whole is not None:
            return variables[whole.group(1)]
        return VARIABLE.sub(lambda match: str(variables[match.group(1)]), value)
    if isinstance(value, Mapping):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    return value


PATH_PART = re.compile(r"\[([^\]=]+)=([^\]]*)\]|([^.\[\]]+)")


def lookup(data: Any, path: str) -> Any:
    """A value inside a JSON answer: `a.b`, `0.name` (a list's first), `[code=2FR].name`."""
    value = data
    for match in PATH_PART.finditer(path):
        field, wanted, key = match.groups()
        if key is not None:
            if isinstance(value, list) and key.lstrip("-").isdigit():
                index = int(key)
                if not -len(value) <= index < len(value):
                    raise LookupError(f"{path}: no item {index} in a list of {len(value)}")
                value = value[index]
            elif isinstance(value, Mapping) and key in value:
                value = value[key]
            else:
                raise LookupError(f"{path}: no {key!r} in {_brief(value)}")
        else:
            if not isinstance(value, list):
                raise LookupError(f"{path}: [{field}={wanted}] needs a list, not {_brief(value)}")
            found = [i for i in value if isinstance(i, Mapping) and str(i.get(field)) == wanted]
            if not found:
                raise LookupError(f"{path}: no item with {field} = {wanted!r}")
            value = found[0]
    return value


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_file(raw: Any, source: str, name: str) -> Scenario:
    return parse(raw, source, default_name=name)


BUILTINS = BuiltinFiles("scenario", lambda line: line.scenarios, _parse_file, ScenarioError)
builtin_names = BUILTINS.names
load_file = BUILTINS.load_file
load = BUILTINS.load


def builtins() -> Iterator[Scenario]:
    for name in builtin_names():
        yield load(name)
