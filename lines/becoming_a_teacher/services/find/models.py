"""Find's copies of Publish's providers and courses: what candidates search."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel

from lines.becoming_a_teacher.services.publish.copies import CourseCopyBase, ProviderCopyBase


class ProviderCopy(ProviderCopyBase, table=True):
    __tablename__ = "find_provider"


class CourseCopy(CourseCopyBase, table=True):
    __tablename__ = "find_course"
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
