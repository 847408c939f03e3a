"""What Publish owns, and its copy of GIAS's schools (`gias_school`)."""

from __future__ import annotations

import uuid as uuid_lib
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from annotated_types import Len
from pydantic import AfterValidator, StrictBool, StringConstraints
from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import AutoString, Field, SQLModel

from lines.becoming_a_teacher.identifiers import CourseCode, ProviderCode, SiteCode, Ukprn, Urn
from serviceline.consumer.tables import Copy
from serviceline.model.fields import Name, UtcDateTime
from serviceline.owner.feed import Owned
from serviceline.runtime.crud import Changes
from serviceline.runtime.db import json_field

ProviderType = Literal["scitt", "lead_school", "university"]
RegionCode = Literal[
    "no_region",
    "london",
    "south_east",
    "south_west",
    "wales",
    "west_midlands",
    "east_midlands",
    "eastern",
    "north_west",
    "yorkshire_and_the_humber",
    "north_east",
    "scotland",
]
CourseLength = Literal["OneYear", "TwoYears"]
DegreeGrade = Literal["two_one", "two_two", "third_class", "not_required"]
CourseState = Literal["draft", "published", "withdrawn", "rolled_over"]
StudyMode = Literal["full_time", "part_time", "both"]
Level = Literal["primary", "secondary", "further_education"]
ProgramType = Literal[
    "higher_education_programme",
    "scitt_programme",
    "school_direct_training_programme",
    "school_direct_salaried_training_programme",
    "pg_teaching_apprenticeship",
    "teacher_degree_apprenticeship",
]
FundingType = Literal["fee", "salary", "apprenticeship"]
Qualification = Literal["qts", "pgce", "pgde", "undergraduate_degree"]
# the awards a course can lead to: the spec's enum of `qualifications` arrays
AWARDS = (
    ("qts",),
    ("pgce",),
    ("pgde",),
    ("qts", "pgce"),
    ("qts", "pgde"),
    ("qts", "undergraduate_degree"),
)


def _one_award(qualifications: list[Qualification]) -> list[Qualification]:
    if tuple(qualifications) not in AWARDS:
        raise ValueError(f"must be one of {[list(award) for award in AWARDS]}")
    return qualifications


Qualifications = Annotated[list[Qualification], AfterValidator(_one_award)]


SubjectCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2}$")]
# a course teaches one subject, two for a secondary course with a second subject, and a few
# more for modern languages
SubjectCodes = Annotated[list[SubjectCode], Len(max_length=10)]
UuidText = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")]


def new_uuid() -> str:
    return str(uuid_lib.uuid4())


class ProviderBase(SQLModel):
    code: ProviderCode = Field(primary_key=True)
    name: Name
    provider_type: ProviderType = Field(sa_type=AutoString)
    accredited_body: bool = False
    ukprn: Ukprn | None = None
    urn: Urn | None = None
    street_address_1: str | None = None
    city: str | None = None
    postcode: str | None = None
    region_code: RegionCode = Field(default="no_region", sa_type=AutoString)
    email: str | None = None
    telephone: str | None = None
    website: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    # a lead partner that candidates may choose a placement school from
    selectable_school: StrictBool = False


class Provider(ProviderBase, Owned, table=True):
    __tablename__ = "publish_provider"
    entity: ClassVar[str] = "provider"
    key_field: ClassVar[str] = "code"
    recruitment_cycle_year: int
    created_at: datetime | None = None


class ProviderCreate(ProviderBase):
    pass


class ProviderUpdate(Changes):
    name: Name | None = None
    provider_type: ProviderType | None = None
    accredited_body: bool | None = None
    ukprn: Ukprn | None = None
    street_address_1: str | None = None
    city: str | None = None
    postcode: str | None = None
    region_code: RegionCode | None = None
    email: str | None = None
    telephone: str | None = None
    website: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    selectable_school: StrictBool | None = None


class CourseBase(SQLModel):
    code: CourseCode
    name: Name
    accredited_provider_code: ProviderCode | None = None
    state: CourseState = Field(default="draft", sa_type=AutoString)
    findable: StrictBool = False
    study_mode: StudyMode = Field(default="full_time", sa_type=AutoString)
    level: Level = Field(sa_type=AutoString)
    program_type: ProgramType = Field(sa_type=AutoString)
    qualifications: Qualifications = Field(sa_type=JSON)
    funding_type: FundingType = Field(default="fee", sa_type=AutoString)
    subject_codes: SubjectCodes = json_field()
    age_minimum: int = Field(ge=3, le=19)
    age_maximum: int = Field(ge=3, le=19)
    start_date: date | None = None
    site_codes: list[SiteCode] = json_field()
    course_length: CourseLength | None = Field(default=None, sa_type=AutoString)
    fee_domestic: int | None = Field(default=None, ge=0, le=100_000)
    fee_international: int | None = Field(default=None, ge=0, le=100_000)
    salary_details: str | None = None
    degree_grade: DegreeGrade | None = Field(default=None, sa_type=AutoString)
    degree_subject_requirements: str | None = None
    accept_pending_gcse: StrictBool | None = None
    accept_gcse_equivalency: StrictBool | None = None
    accept_english_gcse_equivalency: StrictBool | None = None
    accept_maths_gcse_equivalency: StrictBool | None = None
    accept_science_gcse_equivalency: StrictBool | None = None
    additional_gcse_equivalencies: str | None = None
    can_sponsor_student_visa: StrictBool = False
    can_sponsor_skilled_worker_visa: StrictBool = False
    visa_sponsorship_application_deadline_at: UtcDateTime | None = None


class Course(CourseBase, Owned, table=True):
    __tablename__ = "publish_course"
    __table_args__ = (UniqueConstraint("provider_code", "code"),)
    entity: ClassVar[str] = "course"
    key_field: ClassVar[str] = "uuid"
    uuid: str = Field(default_factory=new_uuid, primary_key=True)
    provider_code: str = Field(foreign_key="publish_provider.code", index=True)
    created_at: datetime | None = None


class CourseCreate(CourseBase):
    uuid: UuidText | None = None


class ProviderCourseCreate(CourseCreate):
    """A course in a batch of many providers' courses, naming its provider."""

    provider_code: ProviderCode


class CourseUpdate(Changes):
    name: Name | None = None
    accredited_provider_code: ProviderCode | None = None
    state: CourseState | None = None
    findable: StrictBool | None = None
    study_mode: StudyMode | None = None
    qualifications: Qualifications | None = None
    funding_type: FundingType | None = None
    subject_codes: SubjectCodes | None = None
    age_minimum: int | None = Field(default=None, ge=3, le=19)
    age_maximum: int | None = Field(default=None, ge=3, le=19)
    start_date: date | None = None
    site_codes: list[SiteCode] | None = None
    course_length: CourseLength | None = None
    fee_domestic: int | None = Field(default=None, ge=0, le=100_000)
    fee_international: int | None = Field(default=None, ge=0, le=100_000)
    salary_details: str | None = None
    degree_grade: DegreeGrade | None = None
    degree_subject_requirements: str | None = None
    accept_pending_gcse: StrictBool | None = None
    accept_gcse_equivalency: StrictBool | None = None
    accept_english_gcse_equivalency: StrictBool | None = None
    accept_maths_gcse_equivalency: StrictBool | None = None
    accept_science_gcse_equivalency: StrictBool | None = None
    additional_gcse_equivalencies: str | None = None
    can_sponsor_student_visa: StrictBool | None = None
    can_sponsor_skilled_worker_visa: StrictBool | None = None
    visa_sponsorship_application_deadline_at: UtcDateTime | None = None


class SiteBase(SQLModel):
    code: SiteCode
    name: Name
    street_address_1: str | None = None
    street_address_2: str | None = None
    city: str | None = None
    county: str | None = None
    postcode: str | None = None
    urn: Urn | None = None
    region_code: RegionCode = Field(default="no_region", sa_type=AutoString)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class Site(SiteBase, Owned, table=True):
    __tablename__ = "publish_site"
    __table_args__ = (UniqueConstraint("provider_code", "code"),)
    entity: ClassVar[str] = "site"
    key_field: ClassVar[str] = "uuid"
    uuid: str = Field(default_factory=new_uuid, primary_key=True)
    provider_code: str = Field(foreign_key="publish_provider.code", index=True)


class SiteCreate(SiteBase):
    uuid: UuidText | None = None


class ProviderSiteCreate(SiteCreate):
    """A site in a batch of many providers' sites, naming its provider."""

    provider_code: ProviderCode


class SiteUpdate(Changes):
    name: Name | None = None
    street_address_1: str | None = None
    street_address_2: str | None = None
    city: str | None = None
    county: str | None = None
    postcode: str | None = None
    urn: Urn | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class PartnershipBase(SQLModel):
    accredited_provider_code: ProviderCode = Field(foreign_key="publish_provider.code")
    training_provider_code: ProviderCode = Field(foreign_key="publish_provider.code")


class Partnership(PartnershipBase, Owned, table=True):
    """Accredited provider to lead partner (training provider), as Publish records it."""

    __tablename__ = "publish_partnership"
    __table_args__ = (UniqueConstraint("accredited_provider_code", "training_provider_code"),)
    entity: ClassVar[str] = "partnership"
    key_field: ClassVar[str] = "id"
    id: str = Field(default_factory=new_uuid, primary_key=True)


class PartnershipCreate(PartnershipBase):
    pass


class GiasSchool(Copy, table=True):
    """Publish's copy of GIAS's schools, refreshed by the daily 02:30 import."""

    __tablename__ = "publish_gias_school"
    urn: str = Field(primary_key=True)
    name: str
    status_code: str
    type_code: str
    group_code: str | None = None
    phase_code: str | None = None
    ukprn: str | None = None
    address1: str | None = None
    town: str | None = None
    postcode: str | None = None
    region_code: str | None = None
    minimum_age: int | None = None
    maximum_age: int | None = None


TABLES = (Provider, Course, Site, Partnership)
