"""What Apply owns (candidates, applications) and its copies of Publish's courses and sites."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import StringConstraints, ValidationInfo, field_validator
from sqlalchemy import Index, Integer, and_, cast, func, literal_column
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import JSON, AutoString, Field, Session, SQLModel, col, select

from lines.becoming_a_teacher.identifiers import SiteCode
from lines.becoming_a_teacher.services.publish.copies import CourseCopyBase, ProviderCopyBase
from serviceline.consumer.tables import Copy
from serviceline.owner.feed import Owned
from serviceline.runtime.crud import Changes
from serviceline.runtime.db import json_field, utc_field

# the internal state machine (apply: app/services/application_state_change.rb)
ApplicationStatus = Literal[
    "unsubmitted",
    "awaiting_provider_decision",
    "interviewing",
    "offer",
    "pending_conditions",
    "recruited",
    "rejected",
    "withdrawn",
    "declined",
    "offer_withdrawn",
    "conditions_not_met",
    "offer_deferred",
    "application_not_sent",
    "cancelled",
]
Event = Literal[
    "make_offer",
    "reject",
    "accept",
    "accept_unconditional_offer",
    "decline",
    "withdraw",
    "confirm_conditions_met",
    "conditions_not_met",
]
StudyMode = Literal["full_time", "part_time"]
CourseStudyMode = Literal["full_time", "part_time", "full_time_or_part_time"]
CandidateId = Annotated[str, StringConstraints(pattern=r"^C\d{1,9}$")]
ApplicationId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{10}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=100, strip_whitespace=True)
]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=60, strip_whitespace=True)]
Condition = Annotated[str, StringConstraints(min_length=1, max_length=256)]

MOVES: Mapping[Event, Mapping[ApplicationStatus, ApplicationStatus]] = {
    "make_offer": {
        "awaiting_provider_decision": "offer",
        "interviewing": "offer",
        "offer": "offer",
        "rejected": "offer",
        "offer_withdrawn": "offer",
    },
    # v1.0's /reject on an application with an offer withdraws the offer
    "reject": {
        "awaiting_provider_decision": "rejected",
        "interviewing": "rejected",
        "offer": "offer_withdrawn",
    },
    "accept": {"offer": "pending_conditions"},
    "accept_unconditional_offer": {"offer": "recruited"},
    "decline": {"offer": "declined"},
    "withdraw": {
        "awaiting_provider_decision": "withdrawn",
        "interviewing": "withdrawn",
        "pending_conditions": "withdrawn",
        "recruited": "withdrawn",
        "offer_deferred": "withdrawn",
    },
    "confirm_conditions_met": {"pending_conditions": "recruited"},
    "conditions_not_met": {"pending_conditions": "conditions_not_met"},
}
STAMPS: Mapping[Event, tuple[str, ...]] = {
    "make_offer": ("offer_made_at",),
    "reject": ("rejected_at",),
    "accept": ("offer_accepted_at",),
    "accept_unconditional_offer": ("offer_accepted_at", "recruited_at"),
    "decline": ("offer_declined_at",),
    "withdraw": ("withdrawn_at",),
    "confirm_conditions_met": ("recruited_at",),
    "conditions_not_met": ("conditions_not_met_at",),
}
# a new offer replaces what became of the last one (a rejection, an acceptance)
CLEARS: Mapping[Event, tuple[str, ...]] = {
    "make_offer": ("offer_accepted_at", "offer_declined_at", "rejection_reason", "rejected_at"),
}
# a candidate may not hold two of these for the same course
LIVE: frozenset[ApplicationStatus] = frozenset(
    {
        "awaiting_provider_decision",
        "interviewing",
        "offer",
        "pending_conditions",
        "recruited",
        "offer_deferred",
    }
)


class TransitionError(ValueError):
    """A decision the application's current status does not allow."""


def new_application_id() -> str:
    return secrets.token_hex(5)


class CandidateBase(SQLModel):
    email: Email
    phone_number: str = Field(default="", max_length=50)
    address_line1: str = Field(default="", max_length=50)
    postcode: str | None = Field(default=None, max_length=25)
    country: CountryCode = "GB"


class Candidate(CandidateBase, Owned, table=True):
    __tablename__ = "apply_candidate"
    entity: ClassVar[str] = "candidate"
    key_field: ClassVar[str] = "id"
    id: str = Field(primary_key=True)
    created_at: datetime | None = utc_field()


# a candidate's number, C1000 onwards: indexed, the highest is one step down the index (the
# literal 2 is part of the indexed expression, where a bound parameter would not match it)
CANDIDATE_NUMBER = cast(func.substr(col(Candidate.id), literal_column("2")), Integer)
Index("ix_apply_candidate_number", CANDIDATE_NUMBER)


class CandidateCreate(CandidateBase):
    pass


class CandidateUpdate(Changes):
    email: Email | None = None
    phone_number: str | None = Field(default=None, max_length=50)
    address_line1: str | None = Field(default=None, max_length=50)
    postcode: str | None = Field(default=None, max_length=25)
    country: CountryCode | None = None


class CandidatePublic(CandidateBase):
    id: str
    version: int
    updated_at: datetime | None
    created_at: datetime | None


class ApplicationBase(SQLModel):
    """One course choice as the candidate submits it: the course by uuid, as Apply copied it."""

    candidate_id: CandidateId = Field(foreign_key="apply_candidate.id", index=True)
    course_uuid: str = Field(index=True)
    site_code: SiteCode
    study_mode: StudyMode = Field(sa_type=AutoString)
    first_name: PersonName
    last_name: PersonName
    date_of_birth: date
    nationality: list[CountryCode] = Field(
        default_factory=lambda: ["GB"], sa_type=JSON, max_length=5
    )
    personal_statement: str = Field(default="", max_length=10240)


class ApplicationState(SQLModel):
    """What Apply adds at submission and as decisions are made."""

    status: ApplicationStatus = Field(
        default="awaiting_provider_decision", sa_type=AutoString, index=True
    )
    provider_code: str = Field(index=True)
    course_code: str
    recruitment_cycle_year: int
    submitted_at: datetime | None = utc_field()
    offer_conditions: list[str] = json_field()
    offer_made_at: datetime | None = utc_field()
    offer_accepted_at: datetime | None = utc_field()
    offer_declined_at: datetime | None = utc_field()
    rejection_reason: str | None = None
    rejected_at: datetime | None = utc_field()
    withdrawn_at: datetime | None = utc_field()
    recruited_at: datetime | None = utc_field()
    conditions_not_met_at: datetime | None = utc_field()


class Application(ApplicationBase, ApplicationState, Owned, table=True):
    __tablename__ = "apply_application"
    __table_args__ = (Index("ix_apply_application_site", "provider_code", "site_code"),)
    entity: ClassVar[str] = "application"
    key_field: ClassVar[str] = "id"
    id: str = Field(default_factory=new_application_id, primary_key=True)

    def move(self, event: Event, now: datetime) -> None:
        """Take one step of the state machine, stamping when it happened."""
        moves = MOVES[event]
        target = moves.get(self.status)
        if target is None:
            raise TransitionError(
                f"status: application {self.id} is {self.status!r}; "
                f"{event} is only possible from {sorted(moves)}"
            )
        self.status = target
        for cleared in CLEARS.get(event, ()):
            setattr(self, cleared, None)
        for stamp in STAMPS[event]:
            setattr(self, stamp, now)


class ApplicationCreate(ApplicationBase):
    id: ApplicationId | None = None
    # an application that arrives with its history (a migration, a seed): the events that
    # already happened to it, replayed through the same state machine when it is stored
    history: list[Event] = Field(default_factory=list, max_length=10)
    offer_conditions: list[Condition] = Field(default_factory=list, max_length=20)
    rejection_reason: str | None = Field(default=None, max_length=65535)

    @field_validator("offer_conditions")
    @classmethod
    def _conditions_of_an_offer(cls, conditions: list[str], info: ValidationInfo) -> list[str]:
        if conditions and "make_offer" not in info.data.get("history", []):
            raise ValueError("only an offer has conditions, and the history makes no offer")
        return conditions


class ApplicationPublic(ApplicationBase, ApplicationState):
    id: str
    version: int
    updated_at: datetime | None
    site_still_valid: bool


class ProviderCopy(ProviderCopyBase, table=True):
    __tablename__ = "apply_provider"


class CourseCopy(CourseCopyBase, table=True):
    """Apply's course: Publish's `state` becomes `withdrawn`, `findable` `exposed_in_find`."""

    __tablename__ = "apply_course"
    # narrower than the shared column: Apply's edge turns Publish's `both` into its own name
    study_mode: CourseStudyMode = Field(sa_type=AutoString)
    withdrawn: bool = False
    exposed_in_find: bool = False


class SiteCopy(Copy, table=True):
    """A site that vanishes from Publish while an application names it is flagged, not deleted."""

    __tablename__ = "apply_site"
    __table_args__ = (Index("ix_apply_site_provider_code_code", "provider_code", "code"),)
    uuid: str = Field(primary_key=True)
    code: str
    provider_code: str
    name: str
    street_address_1: str | None = None
    city: str | None = None
    postcode: str | None = None
    urn: str | None = None


def sites_in_use(session: Session, uuids: Collection[str]) -> set[str]:
    """The copied sites, of `uuids`, that an application still names by provider and site code."""
    used = (
        select(SiteCopy.uuid)
        .join(
            Application,
            and_(
                col(Application.provider_code) == col(SiteCopy.provider_code),
                col(Application.site_code) == col(SiteCopy.code),
            ),
        )
        .where(col(SiteCopy.uuid).in_(list(uuids)))
    )
    return set(session.exec(used))


def valid_sites(session: Session, provider_codes: Collection[str]) -> set[tuple[str, str]]:
    """(provider_code, site_code) of the copied sites Publish still lists."""
    rows = session.exec(
        select(SiteCopy.provider_code, SiteCopy.code).where(
            col(SiteCopy.provider_code).in_(list(provider_codes)),
            col(SiteCopy.source_deleted_at).is_(None),
        )
    )
    return set(rows)


def touch_choices_of_moved_courses(
    session: Session, rows: list[dict[str, Any]], before: Mapping[str, Copy]
) -> None:
    """Course's `after_update`: a new start date touches the applications to the course.

    Apply's vendor API and Manage show the course's start date with each application, so the
    real Apply marks them updated; here each becomes a change of its own in Apply's feed.
    """
    moved = [
        row["uuid"]
        for row in rows
        if (old := before.get(row["uuid"])) is not None
        and isinstance(old, CourseCopy)
        and old.start_date != row["start_date"]
    ]
    if not moved:
        return
    for application in session.exec(
        select(Application).where(col(Application.course_uuid).in_(moved))
    ):
        flag_modified(application, "updated_at")
    session.flush()


TABLES = (Candidate, Application)
