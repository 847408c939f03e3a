"""Schools as GIAS holds them, and the daily edubase extract it publishes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, StringConstraints
from sqlmodel import AutoString, Field, SQLModel

from serviceline.feed import Owned
from serviceline.fields import Name, Ukprn, Urn

StatusCode = Literal["1", "2", "3", "4"]
PhaseCode = Literal["0", "1", "2", "3", "4", "5", "6", "7"]
TypeCode = Annotated[str, StringConstraints(pattern=r"^\d{1,2}$")]
GroupCode = Annotated[str, StringConstraints(pattern=r"^\d{1,2}$")]
LaCode = Annotated[str, StringConstraints(pattern=r"^\d{3}$")]
GorCode = Literal["A", "B", "D", "E", "F", "G", "H", "J", "K", "W", "Z"]

STATUS_NAMES = {
    "1": "Open",
    "2": "Closed",
    "3": "Open, but proposed to close",
    "4": "Proposed to open",
}
PHASE_NAMES = {
    "0": "Not applicable",
    "1": "Nursery",
    "2": "Primary",
    "3": "Middle deemed primary",
    "4": "Secondary",
    "5": "Middle deemed secondary",
    "6": "16 plus",
    "7": "All-through",
}
GOR_NAMES = {
    "A": "North East",
    "B": "North West",
    "D": "Yorkshire and the Humber",
    "E": "East Midlands",
    "F": "West Midlands",
    "G": "East of England",
    "H": "London",
    "J": "South East",
    "K": "South West",
    "W": "Wales (pseudo)",
    "Z": "Not Applicable",
}
TYPE_NAMES = {
    "1": "Community school",
    "2": "Voluntary aided school",
    "3": "Voluntary controlled school",
    "5": "Foundation school",
    "11": "Other independent school",
    "15": "Local authority nursery school",
    "25": "Offshore schools",
    "28": "Academy sponsor led",
    "29": "Higher education institutions",
    "30": "Welsh establishment",
    "34": "Academy converter",
    "35": "Free schools",
    "37": "British schools overseas",
}
GROUP_NAMES = {
    "3": "Independent schools",
    "4": "Local authority maintained schools",
    "10": "Academies",
    "11": "Free Schools",
    "2": "Universities",
    "9": "Welsh schools",
    "6": "Other types",
}


class SchoolBase(SQLModel):
    urn: Urn = Field(primary_key=True)
    name: Name
    status_code: StatusCode = Field(default="1", sa_type=AutoString)
    type_code: TypeCode
    group_code: GroupCode
    phase_code: PhaseCode = Field(default="0", sa_type=AutoString)
    ukprn: Ukprn | None = None
    la_code: LaCode
    la_name: str
    street: str | None = None
    town: str | None = None
    postcode: str | None = None
    region_code: GorCode = Field(default="Z", sa_type=AutoString)
    minimum_age: int | None = Field(default=None, ge=0, le=99)
    maximum_age: int | None = Field(default=None, ge=0, le=99)
    open_date: date | None = None
    close_date: date | None = None
    telephone: str | None = None
    website: str | None = None


class School(SchoolBase, Owned, table=True):
    __tablename__ = "gias_school"
    entity: ClassVar[str] = "school"
    key_field: ClassVar[str] = "urn"


class SchoolCreate(SchoolBase):
    pass


class SchoolUpdate(BaseModel):
    name: Name | None = None
    status_code: StatusCode | None = None
    type_code: TypeCode | None = None
    phase_code: PhaseCode | None = None
    ukprn: Ukprn | None = None
    street: str | None = None
    town: str | None = None
    postcode: str | None = None
    close_date: date | None = None
    telephone: str | None = None
    website: str | None = None


class SchoolPublic(SchoolBase):
    version: int
    updated_at: datetime | None


class Extract(SQLModel, table=True):
    """One day's edubasealldata file, as GIAS publishes it the morning after."""

    __tablename__ = "gias_extract"
    day: date = Field(primary_key=True)
    content: bytes


TABLES = (School, Extract)
