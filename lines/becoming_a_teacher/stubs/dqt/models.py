"""People with a TRN as DQT holds them, the TRN requests that create them, and their routes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy import JSON
from sqlmodel import AutoString, Field, SQLModel

from lines.becoming_a_teacher.identifiers import Trn, Ukprn
from serviceline.owner.feed import Owned
from serviceline.runtime.db import json_field, utc_field

PersonStatus = Literal["Active", "Deactivated"]
InductionStatus = Literal[
    "None", "RequiredToComplete", "Exempt", "InProgress", "Passed", "Failed", "FailedInWales"
]
# DQT holds more than teachers: trainees waiting for QTS, and others such as widows and
# widowers who collect their partner's teachers' pension
Kind = Literal["teacher", "trainee", "other"]
TrnRequestStatus = Literal["Pending", "Completed"]
RouteStatus = Literal[
    "InTraining",
    "UnderAssessment",
    "Deferred",
    "DeferredForSkillsTest",
    "Failed",
    "Withdrawn",
    "Holds",
]
AgeSpecialismType = Literal[
    "Range",
    "FoundationStage",
    "FurtherEducation",
    "KeyStage1",
    "KeyStage2",
    "KeyStage3",
    "KeyStage4",
]

# the TRS API's limits: 100 characters a name, request id or email address
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
MiddleName = Annotated[str, StringConstraints(max_length=100, strip_whitespace=True)]
RequestId = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
]
Email = Annotated[
    str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=100, strip_whitespace=True)
]
Nino = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}\d{6}[A-Da-d]$", to_upper=True)]
SubjectReference = Annotated[str, StringConstraints(min_length=1, max_length=10)]
CountryReference = Annotated[str, StringConstraints(min_length=2, max_length=10)]
FIRST_TRN = 3000000
FIND_PERSONS_LIMIT = 500


class CamelModel(BaseModel):
    """The TRS API's camelCase JSON; snake_case names are accepted too."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
    )


class TeacherBase(SQLModel):
    trn: Trn = Field(primary_key=True)
    first_name: PersonName
    middle_name: MiddleName | None = None
    last_name: PersonName
    date_of_birth: date
    email: Email | None = None
    national_insurance_number: Nino | None = None
    status: PersonStatus = Field(default="Active", sa_type=AutoString)
    qts_date: date | None = None
    eyts_date: date | None = None
    induction_status: InductionStatus = Field(default="None", sa_type=AutoString)
    kind: Kind = Field(default="teacher", sa_type=AutoString)


class Teacher(TeacherBase, Owned, table=True):
    __tablename__ = "dqt_teacher"
    entity: ClassVar[str] = "teacher"
    key_field: ClassVar[str] = "trn"
    created_at: datetime | None = utc_field()
    source_trn_request_id: str | None = None


class TeacherCreate(TeacherBase):
    """A person as a seed writes them, TRN given (the seeding API's own snake_case)."""


class TrnRequest(SQLModel, table=True):
    """A request for a TRN: Pending until `due_at` on the simulated clock, then Completed."""

    __tablename__ = "dqt_trn_request"
    request_id: str = Field(primary_key=True)
    status: TrnRequestStatus = Field(default="Pending", sa_type=AutoString, index=True)
    trn: str | None = None
    first_name: str
    middle_name: str | None = None
    last_name: str
    date_of_birth: date
    email_addresses: list[str] = json_field()
    national_insurance_number: str | None = None
    created_at: datetime | None = utc_field()
    due_at: datetime | None = utc_field(index=True)
    completed_at: datetime | None = utc_field()


class TrnRequestPerson(CamelModel):
    first_name: PersonName
    middle_name: MiddleName | None = None
    last_name: PersonName
    date_of_birth: date
    email_addresses: list[Email] = Field(default_factory=list, max_length=10)
    national_insurance_number: Nino | None = None


class TrnRequestBody(CamelModel):
    request_id: RequestId
    person: TrnRequestPerson


class NameChange(CamelModel):
    """CreateNameChangeRequest: a person's new name, as a teacher asks for it with evidence."""

    model_config = ConfigDict(extra="forbid")

    trn: Trn
    first_name: PersonName
    middle_name: MiddleName | None = None
    last_name: PersonName
    evidence_file_name: str | None = Field(default=None, max_length=255)
    evidence_file_url: str | None = Field(default=None, max_length=2048)


class TrnRequestInfo(CamelModel):
    request_id: str
    status: TrnRequestStatus
    trn: str | None


class AgeSpecialism(CamelModel):
    type: AgeSpecialismType
    age_from: int | None = Field(default=None, alias="from", ge=0, le=19)
    age_to: int | None = Field(default=None, alias="to", ge=0, le=19)

    @model_validator(mode="after")
    def range_given_only_for_range(self) -> AgeSpecialism:
        given = self.age_from is not None or self.age_to is not None
        if self.type != "Range" and given:
            raise ValueError(f"from, to: only a Range has ages, not {self.type}")
        if self.type == "Range":
            if self.age_from is None or self.age_to is None:
                raise ValueError("from, to: a Range needs both ages")
            if self.age_to <= self.age_from:
                raise ValueError("to: must be greater than from")
        return self


class RouteBody(CamelModel):
    route_to_professional_status_type_id: uuid.UUID
    status: RouteStatus
    holds_from: date | None = None
    training_start_date: date
    training_end_date: date
    training_subject_references: list[SubjectReference] = Field(default_factory=list, max_length=3)
    training_age_specialism: AgeSpecialism | None = None
    training_country_reference: CountryReference | None = None
    training_provider_ukprn: Ukprn | None = None
    degree_type_id: uuid.UUID | None = None
    is_exempt_from_induction: bool | None = None


class Route(SQLModel, table=True):
    """A person's route to professional status, keyed by the reference its sender gave it."""

    __tablename__ = "dqt_route"
    trn: str = Field(foreign_key="dqt_teacher.trn", primary_key=True)
    reference: str = Field(primary_key=True)
    route_type_id: str
    status: RouteStatus = Field(sa_type=AutoString)
    holds_from: date | None = None
    training_start_date: date
    training_end_date: date
    training_subject_references: list[str] = json_field()
    training_age_specialism: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    training_country_reference: str | None = None
    training_provider_ukprn: str | None = None
    degree_type_id: str | None = None
    is_exempt_from_induction: bool | None = None
    updated_at: datetime | None = utc_field()


class Qts(CamelModel):
    awarded: date


class Eyts(CamelModel):
    awarded: date


class Induction(CamelModel):
    status: InductionStatus


class PersonFound(CamelModel):
    """FindPersonsResponseResult: a person whose TRN and date of birth were asked for together."""

    trn: str
    first_name: str
    middle_name: str
    last_name: str
    date_of_birth: date


class TeacherResponse(PersonFound):
    """GetTeacherResponse of the TRS API v3, with today's induction statuses."""

    national_insurance_number: str | None
    qts: Qts | None
    eyts: Eyts | None
    induction: Induction


class PersonQuery(CamelModel):
    trn: Trn
    date_of_birth: date


class FindPersonsBody(CamelModel):
    """FindPersonsRequest (TRS API v3 from 20240606): persons by TRN and date of birth."""

    # the stub's own bound, so that one request is one query of a few hundred keys
    persons: list[PersonQuery] = Field(max_length=FIND_PERSONS_LIMIT)


class FindPersonsResponse(CamelModel):
    total: int
    query: FindPersonsBody
    results: list[PersonFound]


def teacher_response(teacher: Teacher) -> TeacherResponse:
    return TeacherResponse(
        trn=teacher.trn,
        first_name=teacher.first_name,
        middle_name=teacher.middle_name or "",
        last_name=teacher.last_name,
        date_of_birth=teacher.date_of_birth,
        national_insurance_number=teacher.national_insurance_number,
        qts=Qts(awarded=teacher.qts_date) if teacher.qts_date else None,
        eyts=Eyts(awarded=teacher.eyts_date) if teacher.eyts_date else None,
        induction=Induction(status=teacher.induction_status),
    )


TABLES = (Teacher, TrnRequest, Route)
