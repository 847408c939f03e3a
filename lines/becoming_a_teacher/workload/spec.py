"""A workload as a file: the events of the line's year, each with its volume and rate shape."""

from __future__ import annotations

import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# the cycle's months in its own order: it opens in October
MONTHS = ("oct", "nov", "dec", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep")
Month = Literal["oct", "nov", "dec", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep"]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]
NAMED = re.compile(r"^\w+: ")
SCALED = re.compile(r"^x(\d+(?:\.\d+)?|\.\d+)$")


class Seeded(StrEnum):
    """What a volume is relative to: the count of these the seeded line holds."""

    SCHOOLS = "schools"
    PROVIDERS = "providers"
    COURSES = "courses"
    CANDIDATES = "candidates"
    TEACHERS = "teachers"
    MENTORS = "mentors"


# the service each kind of event writes to
OWNERS = {
    **dict.fromkeys(
        (
            "course_created",
            "course_edited",
            "course_withdrawn",
            "draft_deleted",
            "site_added",
            "site_edited",
            "site_removed",
            "provider_edited",
            "partnership_added",
            "partnership_removed",
        ),
        "publish",
    ),
    **dict.fromkeys(
        (
            "school_opened",
            "school_closed",
            "school_status_changed",
            "school_phase_changed",
            "school_address_changed",
        ),
        "gias",
    ),
    **dict.fromkeys(
        ("candidate_registered", "application_submitted", "application_withdrawn"), "apply"
    ),
    **dict.fromkeys(("offer_accepted", "offer_declined"), "apply"),
    **dict.fromkeys(("offer_made", "application_rejected", "conditions_met"), "manage"),
    **dict.fromkeys(
        ("trainee_updated", "trainee_deferred", "trainee_withdrawn", "qts_recommended"),
        "register",
    ),
    "teacher_name_changed": "dqt",
    **dict.fromkeys(
        ("placement_created", "placements_mentor_added", "placements_school_contact_edited"),
        "placements",
    ),
    **dict.fromkeys(
        ("claims_mentor_added", "claim_submitted", "claims_school_contact_edited"), "claims"
    ),
}
# what the driver does after an application's own events, by the file's `decisions`
FOLLOW_UPS = (
    "offer_made",
    "application_rejected",
    "offer_accepted",
    "offer_declined",
    "conditions_met",
)
# every kind of event a workload may name; the driver knows how to perform each
KINDS = tuple(kind for kind in OWNERS if kind not in FOLLOW_UPS)


class WorkloadError(ValueError):
    """A workload that cannot be run, naming the field at fault."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Profiles(Strict):
    months: dict[str, dict[Month, Weight]] = Field(default_factory=dict)
    weekdays: dict[str, Annotated[list[Weight], Field(min_length=7, max_length=7)]] = Field(
        default_factory=dict
    )
    hours: dict[str, Annotated[list[Weight], Field(min_length=24, max_length=24)]] = Field(
        default_factory=dict
    )


class Rate(Strict):
    """One kind of event: how many a cycle on the reference line, and when they fall."""

    per_cycle: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    relative_to: Seeded
    months: str | dict[Month, Weight]
    weekdays: str | Annotated[list[Weight], Field(min_length=7, max_length=7)]
    hours: str | Annotated[list[Weight], Field(min_length=24, max_length=24)]


Days = Annotated[tuple[float, float], Field(description="fewest and most days, drawn uniformly")]


class Decisions(Strict):
    """What follows an application the workload submits: Manage's decisions, the candidate's."""

    offer_share: Annotated[float, Field(ge=0, le=1)]
    reject_share: Annotated[float, Field(ge=0, le=1)]
    accept_share: Annotated[float, Field(ge=0, le=1)]
    recruit_share: Annotated[float, Field(ge=0, le=1)]
    decide_after_days: Days
    accept_after_days: Days
    # conditions are met once the degree is awarded: from this month of the cycle on
    recruit_from: Month
    recruit_after_days: Days

    @model_validator(mode="after")
    def _shares_and_ranges(self) -> Decisions:
        if self.offer_share + self.reject_share > 1:
            raise ValueError("offer_share and reject_share add up to more than 1")
        for name in ("decide_after_days", "accept_after_days", "recruit_after_days"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name}: give [fewest, most] days, 0 <= fewest <= most")
        return self


class Workload(Strict):
    """Volumes at `reference` (the seeded counts they are written for), times `scale`."""

    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    reference: dict[Seeded, Annotated[int, Field(gt=0)]]
    profiles: Profiles = Profiles()
    decisions: Decisions
    events: dict[str, Rate]

    @model_validator(mode="before")
    @classmethod
    def _known_kinds(cls, data: Any) -> Any:
        events = data.get("events") if isinstance(data, dict) else None
        for kind in events if isinstance(events, dict) else ():
            if kind not in KINDS:
                raise ValueError(f"events.{kind}: no such kind of event; known: {', '.join(KINDS)}")
        return data

    @model_validator(mode="after")
    def _resolvable(self) -> Workload:
        for kind, rate in self.events.items():
            if rate.relative_to not in self.reference:
                raise ValueError(f"events.{kind}.relative_to: no reference count of it")
            for axis in ("months", "weekdays", "hours"):
                value = getattr(rate, axis)
                named: dict[str, Any] = getattr(self.profiles, axis)
                if isinstance(value, str) and value not in named:
                    raise ValueError(
                        f"events.{kind}.{axis}: no profile {value!r} in profiles.{axis}"
                    )
                if rate.per_cycle and not any(self.shape(kind, axis)):
                    raise ValueError(f"events.{kind}.{axis}: every weight is 0")
        return self

    def shape(self, kind: str, axis: Literal["months", "weekdays", "hours"]) -> list[float]:
        """The weights of one axis of an event's rate, a profile's name resolved."""
        value = getattr(self.events[kind], axis)
        if isinstance(value, str):
            value = getattr(self.profiles, axis)[value]
        if axis == "months":
            return [value.get(month, 0.0) for month in MONTHS]
        return list(value)

    def volume(self, kind: str, seeded: dict[Seeded, int]) -> float:
        """Events of `kind` a cycle on a line seeded with these counts."""
        rate = self.events[kind]
        share = seeded.get(rate.relative_to, 0) / self.reference[rate.relative_to]
        return rate.per_cycle * self.scale * share

    def scaled(self, factor: float) -> Workload:
        return self.model_copy(update={"scale": self.scale * factor})


def parse_workload(text: str, where: str) -> Workload:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise WorkloadError(f"{where}: not YAML: {error}") from error
    if not isinstance(data, dict):
        raise WorkloadError(f"{where}: a workload is a mapping with events, reference, decisions")
    try:
        return Workload.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        # a validator's own message names the field it found wrong, under its location
        if not field:
            raise WorkloadError(f"{where}: {message}") from error
        joiner = "." if NAMED.match(message) else ": "
        raise WorkloadError(f"{where}: {field}{joiner}{message}") from error


def default_text() -> str:
    return resources.files(__package__).joinpath("default.yaml").read_text(encoding="utf-8")


def load_workload(source: str | None = None) -> Workload:
    """The default workload, the default scaled ("x0.1"), or a file, optionally scaled."""
    words = (source or "default").split()
    factor = 1.0
    if words and SCALED.match(words[-1]):
        factor = float(words.pop()[1:])
        if factor <= 0:
            raise WorkloadError(f"scale: {source!r} scales by {factor}; give more than 0")
    name = " ".join(words) or "default"
    if name == "default":
        workload = parse_workload(default_text(), "default workload")
    else:
        path = Path(name)
        if not path.is_file():
            raise WorkloadError(
                f"workload: no file {name!r}; give 'default', 'x<factor>' or a YAML file"
            )
        workload = parse_workload(path.read_text(encoding="utf-8"), name)
    return workload.scaled(factor) if factor != 1.0 else workload
