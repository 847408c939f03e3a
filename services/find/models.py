"""Find's copies of Publish's providers and courses: what candidates search."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel
from sqlmodel import Field

from serviceline.copier import Copy
from serviceline.db import json_field


class ProviderCopy(Copy, table=True):
    __tablename__ = "find_provider"
    code: str = Field(primary_key=True)
    name: str
    provider_type: str
    accredited_body: bool = False
    ukprn: str | None = None
    urn: str | None = None
    postcode: str | None = None
    region_code: str | None = None


class CourseCopy(Copy, table=True):
    __tablename__ = "find_course"
    uuid: str = Field(primary_key=True)
    code: str
    provider_code: str = Field(index=True)
    accredited_provider_code: str | None = None
    name: str
    level: str
    study_mode: str
    program_type: str
    qualifications: list[str] = json_field()
    funding_type: str
    subject_codes: list[str] = json_field()
    age_minimum: int
    age_maximum: int
    start_date: date | None = None
    state: str
    findable: bool


StudyMode = Literal["full_time", "part_time"]


class CourseResult(BaseModel):
    uuid: str
    code: str
    name: str
    provider_code: str
    provider_name: str | None
    location: str | None
    study_mode: str
    qualifications: list[str]
    subject_codes: list[str]
    funding_type: str
    start_date: date | None


class SearchResults(BaseModel):
    total: int
    page: int
    per_page: int
    courses: list[CourseResult]
