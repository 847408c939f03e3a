"""What Placements owns (placements, partnerships, mentors) and its copies of GIAS, Publish, DQT."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import StringConstraints, field_validator
from sqlalchemy import UniqueConstraint
from sqlmodel import AutoString, Field, Session, SQLModel, col, select

from lines.becoming_a_teacher.identifiers import AcademicYear, ProviderCode, Trn, Urn
from lines.becoming_a_teacher.services.mentoring.copies import copy_targets
from lines.becoming_a_teacher.services.mentoring.models import (
    MentorBase,
    SchoolCopyBase,
    TeacherCopyBase,
    member_schools,
    used_in,
)
from lines.becoming_a_teacher.services.publish.copies import ProviderCopyBase, SubjectCopyBase
from serviceline.owner.feed import Owned
from serviceline.runtime.crud import Changes
from serviceline.runtime.db import json_field, utc_field

Appetite = Literal["actively_looking", "interested", "not_open", "already_organised"]
YearGroup = Literal[
    "nursery",
    "reception",
    "year_1",
    "year_2",
    "year_3",
    "year_4",
    "year_5",
    "year_6",
    "mixed_year_groups",
]
KeyStage = Literal[
    "early_years",
    "key_stage_1",
    "key_stage_2",
    "key_stage_3",
    "key_stage_4",
    "key_stage_5",
    "mixed_key_stages",
]
Term = Literal["autumn", "spring", "summer"]
# Publish's subject codes, e.g. 00 Primary, G1 Mathematics
SubjectCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]


def new_uuid() -> str:
    return str(uuid.uuid4())


class School(SchoolCopyBase, table=True):
    """GIAS's school as Placements copies it, with what the school itself says here."""

    __tablename__ = "placements_school"
    # onboarded to Manage school placements: kept even once GIAS no longer lists it
    placements_service: bool = False
    appetite: Appetite | None = Field(default=None, sa_type=AutoString)


class SchoolUpdate(Changes):
    appetite: Appetite | None = None
    placements_service: bool | None = None

    @field_validator("placements_service")
    @classmethod
    def not_null(cls, value: bool | None) -> bool:
        # None here can only be an explicit null: left out, a field is not validated
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value


class Provider(ProviderCopyBase, table=True):
    __tablename__ = "placements_provider"


class Subject(SubjectCopyBase, table=True):
    __tablename__ = "placements_subject"


class Teacher(TeacherCopyBase, table=True):
    __tablename__ = "placements_teacher"


class Mentor(MentorBase, Owned, table=True):
    """Placements' own mentor: the same TRN in Claims is another record, and may disagree."""

    __tablename__ = "placements_mentor"
    entity: ClassVar[str] = "mentor"
    key_field: ClassVar[str] = "trn"


class PlacementBase(SQLModel):
    school_urn: Urn = Field(index=True)
    # a school offers a placement before any provider takes it
    provider_code: ProviderCode | None = Field(default=None, index=True)
    subject_code: SubjectCode
    year_group: YearGroup | None = Field(default=None, sa_type=AutoString)
    key_stage: KeyStage | None = Field(default=None, sa_type=AutoString)
    terms: list[Term] = json_field()
    mentor_trns: list[Trn] = json_field()
    send_specific: bool = False


class Placement(PlacementBase, Owned, table=True):
    __tablename__ = "placements_placement"
    entity: ClassVar[str] = "placement"
    key_field: ClassVar[str] = "id"
    id: str = Field(default_factory=new_uuid, primary_key=True)
    academic_year: int = Field(index=True)
    created_at: datetime | None = utc_field()


class PlacementCreate(PlacementBase):
    # the academic year by the year it starts; this one when left out
    academic_year: AcademicYear | None = None


class PlacementUpdate(Changes):
    provider_code: ProviderCode | None = None
    subject_code: SubjectCode | None = None
    year_group: YearGroup | None = None
    key_stage: KeyStage | None = None
    terms: list[Term] | None = None
    mentor_trns: list[Trn] | None = None
    send_specific: bool | None = None

    @field_validator("subject_code", "terms", "mentor_trns", "send_specific")
    @classmethod
    def not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not set to null")
        return value


class SchoolPartnershipBase(SQLModel):
    school_urn: Urn = Field(index=True)
    provider_code: ProviderCode = Field(index=True)


class SchoolPartnership(SchoolPartnershipBase, Owned, table=True):
    """ITT provider to school: a relationship only Placements creates."""

    __tablename__ = "placements_school_partnership"
    __table_args__ = (UniqueConstraint("school_urn", "provider_code"),)
    entity: ClassVar[str] = "school_partnership"
    key_field: ClassVar[str] = "id"
    id: str = Field(default_factory=new_uuid, primary_key=True)
    created_at: datetime | None = utc_field()


class SchoolPartnershipCreate(SchoolPartnershipBase):
    pass


def schools_in_use(session: Session, urns: Collection[str]) -> set[str]:
    """Gias::SyncAllSchoolsJob keeps onboarded schools and those a record of Placements names."""
    onboarded = set(session.exec(select(School.urn).where(col(School.placements_service))))
    used = used_in(session, urns, Placement.school_urn, SchoolPartnership.school_urn)
    return used | onboarded.intersection(urns) | member_schools(session, Mentor, urns)


def providers_in_use(session: Session, codes: Collection[str]) -> set[str]:
    return used_in(session, codes, Placement.provider_code, SchoolPartnership.provider_code)


TABLES = (Mentor, Placement, SchoolPartnership)
COPIES = copy_targets(
    school=School,
    provider=Provider,
    subject=Subject,
    teacher=Teacher,
    mentor=Mentor,
    schools_in_use=schools_in_use,
    providers_in_use=providers_in_use,
)
