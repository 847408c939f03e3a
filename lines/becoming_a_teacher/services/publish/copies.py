"""Columns several consumers copy of one entity, declared once: each adds a table and its own."""

from __future__ import annotations

from datetime import date

from sqlmodel import Field

from serviceline.consumer.tables import Copy
from serviceline.runtime.db import json_field


class SubjectCopyBase(Copy):
    """Publish's subject, as every consumer copies it."""

    code: str = Field(primary_key=True)
    name: str


class ProviderCopyBase(Copy):
    """Publish's provider, as every consumer copies it."""

    code: str = Field(primary_key=True)
    name: str
    provider_type: str
    accredited_body: bool = False
    ukprn: str | None = None
    urn: str | None = None
    postcode: str | None = None
    region_code: str | None = None


class CourseCopyBase(Copy):
    """Publish's course as its consumers copy it, less how each reads its state."""

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
