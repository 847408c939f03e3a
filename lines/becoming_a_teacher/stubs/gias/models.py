"""Schools as GIAS holds them, and the daily edubase extract it publishes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import StringConstraints
from sqlmodel import AutoString, Field, SQLModel

from lines.becoming_a_teacher.identifiers import Ukprn, Urn
from lines.becoming_a_teacher.readers import EDUBASE_CSV
from serviceline.model.fields import Name
from serviceline.model.topology import KERNEL_READER, Reader
from serviceline.owner.feed import Owned
from serviceline.runtime.crud import Changes

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


COLUMNS = (
    "URN",
    "LA (code)",
    "LA (name)",
    "EstablishmentName",
    "TypeOfEstablishment (code)",
    "TypeOfEstablishment (name)",
    "EstablishmentTypeGroup (code)",
    "EstablishmentTypeGroup (name)",
    "EstablishmentStatus (code)",
    "EstablishmentStatus (name)",
    "OpenDate",
    "CloseDate",
    "PhaseOfEducation (code)",
    "PhaseOfEducation (name)",
    "StatutoryLowAge",
    "StatutoryHighAge",
    "UKPRN",
    "LastChangedDate",
    "Street",
    "Town",
    "Postcode",
    "SchoolWebsite",
    "TelephoneNum",
    "GOR (code)",
    "GOR (name)",
)


def _day(value: date | None) -> str:
    return value.strftime("%d-%m-%Y") if value else ""


def edubase_row(school: School) -> tuple[Any, ...]:
    return (
        school.urn,
        school.la_code,
        school.la_name,
        school.name,
        school.type_code,
        TYPE_NAMES.get(school.type_code, ""),
        school.group_code,
        GROUP_NAMES.get(school.group_code, ""),
        school.status_code,
        STATUS_NAMES[school.status_code],
        _day(school.open_date),
        _day(school.close_date),
        school.phase_code,
        PHASE_NAMES[school.phase_code],
        school.minimum_age if school.minimum_age is not None else "",
        school.maximum_age if school.maximum_age is not None else "",
        school.ukprn or "",
        _day(school.updated_at.date() if school.updated_at else None),
        school.street or "",
        school.town or "",
        school.postcode or "",
        school.website or "",
        school.telephone or "",
        school.region_code,
        GOR_NAMES[school.region_code],
    )


class School(SchoolBase, Owned, table=True):
    __tablename__ = "gias_school"
    entity: ClassVar[str] = "school"
    key_field: ClassVar[str] = "urn"
    readable_as: ClassVar[frozenset[Reader]] = frozenset({KERNEL_READER, EDUBASE_CSV})

    def as_read_by(self, reader: Reader) -> dict[str, Any]:
        if reader is not EDUBASE_CSV:
            return self.feed_record()
        # as the CSV reader gives it, dates dd-mm-yyyy included, so checksums of the copies
        # made from the file agree with the owner's
        return {
            name: (str(value) if value != "" else None)
            for name, value in zip(COLUMNS, edubase_row(self), strict=True)
        }


class SchoolCreate(SchoolBase):
    pass


class SchoolUpdate(Changes):
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
