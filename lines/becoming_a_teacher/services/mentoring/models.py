"""The copies both mentor services keep, and the mentor each of them owns on its own."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import String, cast
from sqlmodel import AutoString, Field, Session, SQLModel, col, select

from lines.becoming_a_teacher.identifiers import Trn, Urn
from serviceline.consumer.tables import Copy
from serviceline.runtime.db import json_field

FundingRegion = Literal["Inner London", "Outer London", "Fringe", "Rest of England"]


def academic_year_of(day: date) -> int:
    """The academic year a day falls in, named by the year it starts: 1 September to 31 August."""
    return day.year if day.month >= 9 else day.year - 1


def academic_year_name(year: int) -> str:
    return f"{year} to {year + 1}"


class SchoolCopyBase(Copy):
    """GIAS's school as Gias::SyncAllSchoolsJob imports it, with the funding region it assigns."""

    urn: str = Field(primary_key=True)
    name: str
    ukprn: str | None = None
    address1: str | None = None
    town: str | None = None
    postcode: str | None = None
    telephone: str | None = None
    website: str | None = None
    type_of_establishment: str | None = None
    phase: str | None = None
    minimum_age: int | None = None
    maximum_age: int | None = None
    local_authority_name: str | None = None
    region: str | None = None
    funding_region: FundingRegion | None = Field(default=None, sa_type=AutoString)


class TeacherCopyBase(Copy):
    """A mentor's names as DQT last gave them to the nightly sync."""

    trn: str = Field(primary_key=True)
    first_name: str
    last_name: str


class MentorBase(SQLModel):
    """A school's mentor: identified by TRN, named by DQT, a member of one school or more."""

    trn: str = Field(primary_key=True)
    first_name: str
    last_name: str
    school_urns: list[str] = json_field()


class MentorCreate(BaseModel):
    """A mentor added to a school by TRN and date of birth, both checked against DQT."""

    trn: Trn
    date_of_birth: date
    school_urn: Urn


def used_in(session: Session, keys: Collection[str], *columns: Any) -> set[str]:
    """Which of `keys` the consumer's own records hold in any of `columns`."""
    wanted = list(keys)
    used: set[str] = set()
    for column in columns:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            used.update(session.exec(select(column).where(col(column).in_(chunk))))
    return used


def mentors_at(model: type[MentorBase], urn: str) -> Any:
    """A condition: the mentor is a member of school `urn` (a quoted URN in its JSON list)."""
    return cast(col(model.school_urns), String).contains(f'"{urn}"')


def member_schools(session: Session, model: type[MentorBase], urns: Collection[str]) -> set[str]:
    """Which of `urns` have a mentor."""
    wanted = set(urns)
    held: set[str] = set()
    for schools in session.exec(select(col(model.school_urns))):
        held.update(wanted.intersection(schools))
    return held
