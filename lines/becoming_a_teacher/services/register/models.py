"""What Register owns (trainees, TRN requests) and its copies of Publish, Apply, GIAS, HESA, DQT."""

from __future__ import annotations

import secrets
import string
from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, StringConstraints, ValidationInfo, field_validator
from sqlmodel import AutoString, Field, Session, SQLModel, col, or_, select

from lines.becoming_a_teacher.identifiers import ProviderCode, Trn, Ukprn, Urn
from lines.becoming_a_teacher.services.publish.copies import SubjectCopyBase
from lines.becoming_a_teacher.services.register.codes import Sex, StudyMode, TrainingRoute
from serviceline.consumer.tables import Copy
from serviceline.model.fields import Name
from serviceline.owner.feed import Owned
from serviceline.runtime.db import json_field, utc_field

TraineeState = Literal[
    "draft",
    "submitted_for_trn",
    "trn_received",
    "recommended_for_award",
    "withdrawn",
    "deferred",
    "awarded",
]
TraineeEvent = Literal[
    "submit_for_trn",
    "receive_trn",
    "recommend_for_award",
    "withdraw",
    "defer",
    "reinstate",
    "award",
]
RecordSource = Literal["api", "csv", "hesa", "apply", "manual"]
ImportState = Literal["importable", "non_importable_hei", "imported"]
TrnRequestStatus = Literal["Pending", "Completed", "TimedOut"]

# Register's state machine (register-trainee-teachers: app/models/trainee.rb)
MOVES: Mapping[TraineeEvent, Mapping[TraineeState, TraineeState]] = {
    "submit_for_trn": {"draft": "submitted_for_trn"},
    "receive_trn": {"submitted_for_trn": "trn_received"},
    "recommend_for_award": {"trn_received": "recommended_for_award"},
    "withdraw": {
        "submitted_for_trn": "withdrawn",
        "trn_received": "withdrawn",
        "deferred": "withdrawn",
    },
    "defer": {"submitted_for_trn": "deferred", "trn_received": "deferred"},
    # back to trn_received, or to submitted_for_trn while the TRN is still awaited
    "reinstate": {"deferred": "trn_received"},
    "award": {"recommended_for_award": "awarded"},
}
STAMPS: Mapping[TraineeEvent, str] = {
    "submit_for_trn": "submitted_for_trn_at",
    "recommend_for_award": "recommended_for_award_at",
    "award": "awarded_at",
}

Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=100, strip_whitespace=True)
]
HesaId = Annotated[str, StringConstraints(pattern=r"^\d{13}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]
SLUG_ALPHABET = string.ascii_lowercase + string.digits


class TransitionError(ValueError):
    """A change the trainee's current state does not allow."""


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(24))


class TraineeBase(SQLModel):
    """A trainee's personal and course details, as a provider records them."""

    first_names: Name
    middle_names: Text | None = None
    last_name: Name
    previous_last_name: Text | None = None
    date_of_birth: date
    sex: Sex | None = Field(default=None, sa_type=AutoString)
    email: Email | None = None
    nationality: CountryCode | None = None
    ni_number: Text | None = None
    training_route: TrainingRoute | None = Field(default=None, sa_type=AutoString)
    study_mode: StudyMode | None = Field(default=None, sa_type=AutoString)
    course_subject_one: Text | None = None
    course_subject_two: Text | None = None
    course_subject_three: Text | None = None
    course_min_age: int | None = Field(default=None, ge=0, le=19)
    course_max_age: int | None = Field(default=None, ge=0, le=19)
    course_uuid: str | None = Field(default=None, index=True)
    itt_start_date: date | None = None
    itt_end_date: date | None = None
    trainee_start_date: date | None = None
    provider_code: ProviderCode | None = Field(default=None, index=True)
    ukprn: Ukprn | None = None
    provider_trainee_id: Text | None = None
    employing_school_urn: Urn | None = Field(default=None, index=True)
    training_partner_urn: Urn | None = Field(default=None, index=True)
    training_partner_ukprn: Ukprn | None = None


class HesaDetails(SQLModel):
    """What Register keeps as the HESA codes a provider sent (its hesa_trainee_detail)."""

    itt_aim: str | None = None
    itt_qualification_aim: str | None = None
    course_year: int | None = None
    fund_code: str | None = None
    funding_method: str | None = None
    ethnicity: str | None = None
    pg_apprenticeship_start_date: date | None = None
    additional_training_initiative: str | None = None


class Trainee(TraineeBase, HesaDetails, Owned, table=True):
    __tablename__ = "register_trainee"
    entity: ClassVar[str] = "trainee"
    key_field: ClassVar[str] = "slug"
    slug: str = Field(default_factory=new_slug, primary_key=True)
    trn: Trn | None = Field(default=None, index=True)
    hesa_id: HesaId | None = Field(default=None, unique=True)
    apply_id: str | None = Field(default=None, unique=True)
    state: TraineeState = Field(default="draft", sa_type=AutoString, index=True)
    record_source: RecordSource = Field(sa_type=AutoString)
    created_at: datetime | None = utc_field()
    submitted_for_trn_at: datetime | None = utc_field()
    recommended_for_award_at: datetime | None = utc_field()
    outcome_date: date | None = None
    awarded_at: datetime | None = utc_field()
    defer_date: date | None = None
    defer_reason: str | None = None
    reinstate_date: date | None = None
    withdrawal_date: date | None = None
    withdrawal_reasons: list[str] = json_field()
    withdrawal_trigger: str | None = None
    withdrawal_future_interest: str | None = None
    withdrawal_another_reason: str | None = None
    withdrawal_safeguarding_concern_reasons: str | None = None

    def move(self, event: TraineeEvent, now: datetime) -> None:
        """Take one step of the state machine, stamping when it happened."""
        moves = MOVES[event]
        target = moves.get(self.state)
        if target is None:
            raise TransitionError(
                f"state: trainee {self.slug} is {self.state!r}; "
                f"{event} is only possible from {sorted(moves)}"
            )
        if event == "reinstate" and self.trn is None:
            target = "submitted_for_trn"
        self.state = target
        if event in STAMPS:
            setattr(self, STAMPS[event], now)


class TraineeCreate(TraineeBase):
    """A draft a provider user starts by hand in Register."""

    @field_validator("itt_end_date")
    @classmethod
    def _ends_after_it_starts(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("itt_start_date")
        if end is not None and start is not None and end < start:
            raise ValueError(f"must not be before itt_start_date {start}")
        return end

    @field_validator("course_max_age")
    @classmethod
    def _ages_in_order(cls, oldest: int | None, info: ValidationInfo) -> int | None:
        youngest = info.data.get("course_min_age")
        if oldest is not None and youngest is not None and oldest < youngest:
            raise ValueError(f"must not be below course_min_age {youngest}")
        return oldest


class Deferral(BaseModel):
    defer_date: date | None = None
    defer_reason: Text | None = None


class Withdrawal(BaseModel):
    withdrawal_date: date | None = None
    reasons: list[Text] = Field(default_factory=list, max_length=20)
    trigger: Text | None = None
    future_interest: Text | None = None
    another_reason: Text | None = None
    safeguarding_concern_reasons: Text | None = None


class Recommendation(BaseModel):
    # the date the trainee met the QTS standards: DQT holds QTS from then
    qts_standards_met_date: date | None = None


class TrnRequest(SQLModel, table=True):
    """A TRN asked of DQT for a trainee, and when Register next asks how it is going."""

    __tablename__ = "register_trn_request"
    request_id: str = Field(primary_key=True)
    slug: str = Field(foreign_key="register_trainee.slug", index=True)
    status: TrnRequestStatus = Field(default="Pending", sa_type=AutoString)
    trn: str | None = None
    requested_at: datetime | None = utc_field()
    next_poll_at: datetime | None = utc_field(index=True)
    give_up_at: datetime | None = utc_field()
    polls: int = 0


class Subject(SubjectCopyBase, table=True):
    """Publish's subjects, refreshed by the daily 02:00 import."""

    __tablename__ = "register_subject"


class CourseCopy(Copy, table=True):
    """Publish's course as Register imports it: `route` is Publish's program type."""

    __tablename__ = "register_course"
    uuid: str = Field(primary_key=True)
    code: str
    provider_code: str = Field(index=True)
    accredited_body_code: str | None = None
    name: str
    level: str
    study_mode: str
    route: str
    qualifications: list[str] = json_field()
    subject_codes: list[str] = json_field()
    min_age: int | None = None
    max_age: int | None = None
    published_start_date: date | None = None
    state: str


class ApplyApplication(Copy, table=True):
    """A recruited application read from Apply's register API, and whether it became a trainee."""

    __tablename__ = "register_apply_application"
    apply_id: str = Field(primary_key=True)
    status: str
    first_name: str
    last_name: str
    date_of_birth: date
    email: str | None = None
    provider_code: str
    course_code: str
    site_code: str | None = None
    study_mode: StudyMode = Field(sa_type=AutoString)
    recruited_at: datetime | None = utc_field()
    import_state: ImportState = Field(default="importable", sa_type=AutoString, index=True)


class School(Copy, table=True):
    """GIAS's establishments, less universities, refreshed by the weekly Sunday import."""

    __tablename__ = "register_school"
    urn: str = Field(primary_key=True)
    name: str
    open_date: str | None = None
    close_date: str | None = None
    town: str | None = None
    postcode: str | None = None


class HesaRecord(Copy, table=True):
    """A `<Student>` of HESA's ITT collection, as Register pulled it."""

    __tablename__ = "register_hesa_record"
    hesa_id: str = Field(primary_key=True)
    first_names: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None
    email: str | None = None
    ukprn: str | None = None
    provider_trainee_id: str | None = None
    trn: str | None = None
    itt_aim: str | None = None
    study_mode: str | None = None
    itt_start_date: date | None = None
    course_subject_one: str | None = None
    status: str | None = None


class DqtTeacher(Copy, table=True):
    """A person DQT gave a TRN, as Register read them when the TRN arrived."""

    __tablename__ = "register_dqt_teacher"
    trn: str = Field(primary_key=True)
    first_name: str | None = None
    last_name: str | None = None
    date_of_birth: date | None = None


def courses_in_use(session: Session, uuids: Collection[str]) -> set[str]:
    used = select(Trainee.course_uuid).where(col(Trainee.course_uuid).in_(list(uuids)))
    return {uuid for uuid in session.exec(used) if uuid is not None}


def subjects_in_use(session: Session, codes: Collection[str]) -> set[str]:
    """Subjects, of `codes`, that the course of some trainee teaches."""
    courses = select(CourseCopy.subject_codes).where(
        col(CourseCopy.uuid).in_(select(Trainee.course_uuid).distinct())
    )
    taught = {code for subject_codes in session.exec(courses) for code in subject_codes}
    return taught & set(codes)


def schools_in_use(session: Session, urns: Collection[str]) -> set[str]:
    """Schools, of `urns`, that employ or partner in training some trainee."""
    wanted = list(urns)
    rows = session.exec(
        select(Trainee.employing_school_urn, Trainee.training_partner_urn).where(
            or_(
                col(Trainee.employing_school_urn).in_(wanted),
                col(Trainee.training_partner_urn).in_(wanted),
            )
        )
    )
    return {urn for row in rows for urn in row if urn is not None and urn in urns}


TABLES = (Trainee, TrnRequest)
