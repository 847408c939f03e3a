"""What Claims owns (claims, their mentor training, mentors), and its copies of the rest."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, field_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import AutoString, Field, Session, SQLModel, col, func, select

from lines.becoming_a_teacher.identifiers import AcademicYear, ProviderCode, Trn, Urn
from lines.becoming_a_teacher.services.mentoring.copies import copy_targets
from lines.becoming_a_teacher.services.mentoring.models import (
    FundingRegion,
    MentorBase,
    SchoolCopyBase,
    TeacherCopyBase,
    member_schools,
    used_in,
)
from lines.becoming_a_teacher.services.publish.copies import ProviderCopyBase, SubjectCopyBase
from serviceline.model.fields import Name
from serviceline.owner.feed import Owned
from serviceline.runtime.crud import Changes
from serviceline.runtime.db import utc_field

# Claims::Claim's status enum
ClaimStatus = Literal[
    "internal_draft",
    "draft",
    "submitted",
    "payment_in_progress",
    "payment_information_requested",
    "payment_information_sent",
    "paid",
    "payment_not_approved",
    "sampling_in_progress",
    "sampling_provider_not_approved",
    "sampling_not_approved",
    "clawback_requested",
    "clawback_in_progress",
    "clawback_complete",
    "invalid_provider",
    "clawback_requires_approval",
    "clawback_rejected",
]
DRAFT_STATUSES: frozenset[ClaimStatus] = frozenset({"internal_draft", "draft"})
TrainingType = Literal["initial", "refresher"]
# Claims::TrainingHours: initial training was cut to 16 hours from the 2025 academic year
INITIAL_HOURS_BEFORE_2025 = 20
INITIAL_HOURS = 16
REFRESHER_HOURS = 6


def new_uuid() -> str:
    return str(uuid.uuid4())


def new_references(session: Session, count: int) -> list[str]:
    """Claims::Claim::Referencable: random numbers no claim holds; here always eight digits."""
    references: set[str] = set()
    while len(references) < count:
        while len(references) < count:
            references.add(str(10_000_000 + secrets.randbelow(89_999_999)))
        held = select(Claim.reference).where(col(Claim.reference).in_(list(references)))
        taken: list[str] = list(session.exec(held))
        references.difference_update(taken)
    return sorted(references)


class School(SchoolCopyBase, table=True):
    __tablename__ = "claims_school"
    # onboarded to Claim funding for mentor training: kept even once GIAS no longer lists it
    claims_service: bool = False


class SchoolUpdate(Changes):
    claims_service: bool


class SchoolPublic(SchoolCopyBase):
    claims_service: bool
    funding_available_per_hour: Decimal


class Provider(ProviderCopyBase, table=True):
    __tablename__ = "claims_provider"


class Subject(SubjectCopyBase, table=True):
    __tablename__ = "claims_subject"


class Teacher(TeacherCopyBase, table=True):
    __tablename__ = "claims_teacher"


class Mentor(MentorBase, Owned, table=True):
    """Claims' own mentor: the same TRN in Placements is another record, and may disagree."""

    __tablename__ = "claims_mentor"
    entity: ClassVar[str] = "mentor"
    key_field: ClassVar[str] = "trn"


class Claim(Owned, table=True):
    """A school's claim on one provider's behalf for one academic year (its claim window)."""

    __tablename__ = "claims_claim"
    entity: ClassVar[str] = "claim"
    key_field: ClassVar[str] = "id"
    id: str = Field(default_factory=new_uuid, primary_key=True)
    reference: str = Field(unique=True)
    school_urn: str = Field(index=True)
    provider_code: str = Field(index=True)
    academic_year: int = Field(index=True)
    status: ClaimStatus = Field(default="draft", sa_type=AutoString, index=True)
    created_at: datetime | None = utc_field()
    submitted_at: datetime | None = utc_field()
    submitted_by: str | None = None


class MentorTraining(SQLModel, table=True):
    """One mentor's training on a claim: a line item, changed only with its claim."""

    __tablename__ = "claims_mentor_training"
    __table_args__ = (UniqueConstraint("claim_id", "mentor_trn"),)
    id: int | None = Field(default=None, primary_key=True)
    claim_id: str = Field(foreign_key="claims_claim.id", index=True)
    mentor_trn: str = Field(index=True)
    training_type: TrainingType = Field(sa_type=AutoString)
    hours_completed: int
    date_completed: date | None = None


class MentorTrainingCreate(BaseModel):
    mentor_trn: Trn
    hours_completed: int = Field(ge=1)
    date_completed: date | None = None
    # Claims decides initial or refresher; given, it must agree
    training_type: TrainingType | None = None


class ClaimCreate(BaseModel):
    school_urn: Urn
    provider_code: ProviderCode
    # the claim window's academic year, by the year it starts; this one when left out
    academic_year: AcademicYear | None = None
    mentor_trainings: list[MentorTrainingCreate] = Field(default_factory=list)
    # given, the claim is submitted as it is made (a seed's claims from earlier years)
    submitted_by: Name | None = None

    @field_validator("submitted_by")
    @classmethod
    def not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value


class Submission(BaseModel):
    submitted_by: Name


class MentorTrainingPublic(BaseModel):
    mentor_trn: str
    training_type: TrainingType
    hours_completed: int
    date_completed: date | None
    amount: Decimal
    # the mentor's cap with this provider this academic year, and what other claims have used
    hours_allowed: int
    hours_claimed_elsewhere: int


class ClaimSummary(BaseModel):
    """A claim with its amount: the hours claimed at the school's regional rate."""

    id: str
    reference: str
    school_urn: str
    provider_code: str
    academic_year: int
    claim_window: str
    status: ClaimStatus
    created_at: datetime | None
    submitted_at: datetime | None
    submitted_by: str | None
    version: int
    updated_at: datetime | None
    funding_region: FundingRegion | None
    funding_available_per_hour: Decimal
    hours_completed: int
    amount: Decimal


class ClaimPublic(ClaimSummary):
    mentor_trainings: list[MentorTrainingPublic]


@dataclass(frozen=True)
class Allowance:
    """Claims::TrainingAllowance: one mentor's hours with one provider in one academic year."""

    training_type: TrainingType
    hours_allowed: int
    hours_claimed_elsewhere: int

    @property
    def remaining(self) -> int:
        return max(self.hours_allowed - self.hours_claimed_elsewhere, 0)


def hours_allowed(academic_year: int, training_type: TrainingType) -> int:
    if training_type == "refresher":
        return REFRESHER_HOURS
    return INITIAL_HOURS_BEFORE_2025 if academic_year < 2025 else INITIAL_HOURS


@dataclass
class Ledger:
    """The hours claims not in draft hold, by provider and mentor, then by academic year: read
    once for a batch of claims, then kept as each claim of the batch is submitted."""

    held: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)

    @classmethod
    def read(
        cls,
        session: Session,
        providers: Collection[str],
        trns: Collection[str],
        up_to: int,
        leaving_out: str | None = None,
    ) -> Ledger:
        """The hours of these providers' claims for these mentors, up to academic year `up_to`;
        the claim `leaving_out` left out, as a claim's own hours never limit it."""
        ledger = cls()
        wanted = list(set(trns))
        for start in range(0, len(wanted), 500):
            query = (
                select(
                    Claim.provider_code,
                    MentorTraining.mentor_trn,
                    Claim.academic_year,
                    func.sum(MentorTraining.hours_completed),
                )
                .join(Claim)
                .where(
                    col(Claim.provider_code).in_(list(set(providers))),
                    col(MentorTraining.mentor_trn).in_(wanted[start : start + 500]),
                    col(Claim.status).not_in(DRAFT_STATUSES),
                    Claim.academic_year <= up_to,
                )
                .group_by(
                    col(Claim.provider_code),
                    col(MentorTraining.mentor_trn),
                    col(Claim.academic_year),
                )
            )
            if leaving_out is not None:
                query = query.where(Claim.id != leaving_out)
            for code, trn, year, hours in session.exec(query):
                ledger.held.setdefault((code, trn), {})[year] = int(hours)
        return ledger

    def allowances(self, claim: Claim, trns: Iterable[str]) -> dict[str, Allowance]:
        """Each mentor's allowance with the claim's provider in the claim's academic year."""
        found = {}
        for trn in trns:
            years = self.held.get((claim.provider_code, trn), {})
            # refresher once a claim not in draft trained them with this provider in an earlier year
            earlier = any(year < claim.academic_year for year in years)
            kind: TrainingType = "refresher" if earlier else "initial"
            used = years.get(claim.academic_year, 0)
            found[trn] = Allowance(kind, hours_allowed(claim.academic_year, kind), used)
        return found

    def submitted(self, claim: Claim, trainings: Iterable[MentorTraining]) -> None:
        """A claim submitted: its hours count against its mentors' allowances from now on."""
        for training in trainings:
            years = self.held.setdefault((claim.provider_code, training.mentor_trn), {})
            years[claim.academic_year] = (
                years.get(claim.academic_year, 0) + training.hours_completed
            )


def allowances(session: Session, claim: Claim, trns: Collection[str]) -> dict[str, Allowance]:
    """Each mentor's allowance with the claim's provider in the claim's academic year."""
    ledger = Ledger.read(
        session, [claim.provider_code], trns, claim.academic_year, leaving_out=claim.id
    )
    return ledger.allowances(claim, trns)


def schools_in_use(session: Session, urns: Collection[str]) -> set[str]:
    """Gias::SyncAllSchoolsJob keeps onboarded schools and those a record of Claims names."""
    onboarded = set(session.exec(select(School.urn).where(col(School.claims_service))))
    used = used_in(session, urns, Claim.school_urn)
    return used | onboarded.intersection(urns) | member_schools(session, Mentor, urns)


def providers_in_use(session: Session, codes: Collection[str]) -> set[str]:
    return used_in(session, codes, Claim.provider_code)


TABLES = (Mentor, Claim, MentorTraining)
COPIES = copy_targets(
    school=School,
    provider=Provider,
    subject=Subject,
    teacher=Teacher,
    mentor=Mentor,
    schools_in_use=schools_in_use,
    providers_in_use=providers_in_use,
)
