"""A trainee's record in HESA's ITT collection: the F_* fields of one `<Student>`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlmodel import AutoString, Field, SQLModel

from lines.becoming_a_teacher.identifiers import Trn, Ukprn, Urn
from serviceline.model.fields import Name
from serviceline.owner.feed import Owned
from serviceline.runtime.db import json_field


def hesa_name(field: str) -> str:
    """`husid` is sent and served as `F_HUSID`: the collection's own field names."""
    return f"F_{field.upper()}"


Husid = Annotated[str, StringConstraints(pattern=r"^\d{13}$")]
Hecos = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
TwoDigits = Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
ThreeDigits = Annotated[str, StringConstraints(pattern=r"^\d{3}$")]
AgeRange = Annotated[str, StringConstraints(pattern=r"^\d{5}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Nino = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}\d{6}[A-Da-d]$", to_upper=True)]
Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=100, strip_whitespace=True)
]
Short = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]
# HESA's SEXID: 10 female, 11 male, 12 other, 96 information refused, 99 not available
SexId = Literal["10", "11", "12", "96", "99"]
# 201 professional status only, 202 with an academic award
IttAim = Literal["201", "202"]


class StudentBase(SQLModel):
    """The record as a student record system submits it; the HESA names are in `hesa_name`."""

    ukprn: Ukprn
    status: Short | None = None
    husid: Husid = Field(primary_key=True)
    ownstu: Short | None = None
    birthdte: date
    entryrte: TwoDigits | None = None
    expectedenddate: date | None = None
    fnames: Name
    fundcode: Annotated[str, StringConstraints(pattern=r"^\d$")] | None = None
    ittaim: IttAim | None = Field(default=None, sa_type=AutoString)
    ittphsc: AgeRange | None = None
    mode: TwoDigits | None = None
    nation: Country | None = None
    nin: Nino | None = None
    nqtemail: Email | None = None
    qlaim: ThreeDigits | None = None
    sdemploy: Urn | None = None
    sdlead: Urn | None = None
    sexid: SexId = Field(sa_type=AutoString)
    surname: Name
    trn: Trn | None = None
    applyapplicationid: Short | None = None
    ittstartdate: date
    traineestartdate: date | None = None
    sbjca1: Hecos
    sbjca2: Hecos | None = None
    sbjca3: Hecos | None = None


class ITTRecord(StudentBase, Owned, table=True):
    __tablename__ = "hesa_itt_record"
    entity: ClassVar[str] = "itt_record"
    key_field: ClassVar[str] = "husid"
    placements: list[dict[str, Any]] = json_field()


class HesaNames(BaseModel):
    model_config = ConfigDict(alias_generator=hesa_name, validate_by_name=True)


class Placement(HesaNames):
    plmntsch: Urn
    plmntdys: int | None = Field(default=None, ge=0, le=366)


class Student(StudentBase):
    """A submitted `<Student>`, in JSON with the collection's F_* names."""

    model_config = {"alias_generator": hesa_name, "validate_by_name": True}
    placements: list[Placement] = Field(default_factory=list, alias="PLACEMENTS")


class StudentPublic(Student):
    """A record as HESA serves it: what was submitted, and when HESA committed it."""

    recid: str
    commit_timestamp: str | None


TABLES = (ITTRecord,)
