"""Manage's copy of Apply's applications, and what it keeps to itself: notes and partnerships."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from lines.becoming_a_teacher.identifiers import ProviderCode
from serviceline.consumer.tables import Copy
from serviceline.model.fields import Name
from serviceline.runtime.db import utc_field

Condition = Annotated[str, StringConstraints(min_length=1, max_length=256)]
NoteText = Annotated[str, StringConstraints(min_length=1, max_length=10240, strip_whitespace=True)]
Bounded = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class ApplicationCopy(Copy, table=True):
    """Apply's application as Manage last copied it: decisions reach it only at the next sync."""

    __tablename__ = "manage_application"
    id: str = Field(primary_key=True)
    candidate_id: str
    status: str = Field(index=True)
    course_uuid: str
    provider_code: str = Field(index=True)
    course_code: str
    site_code: str | None = None
    study_mode: str
    first_name: str
    last_name: str
    date_of_birth: date | None = None
    submitted_at: datetime | None = utc_field()
    offer_made_at: datetime | None = utc_field()
    recruited_at: datetime | None = utc_field()


class NoteBase(SQLModel):
    text: NoteText
    author: Name


class Note(NoteBase, table=True):
    """A provider's note on an application: it stays in Manage and never reaches Apply."""

    __tablename__ = "manage_note"
    id: int | None = Field(default=None, primary_key=True)
    # no foreign key: the copy it annotates may be removed by a sync, the note stays
    application_id: str = Field(index=True)
    created_at: datetime | None = utc_field()


class NoteCreate(NoteBase):
    pass


class PartnershipBase(SQLModel):
    accredited_provider_code: ProviderCode
    lead_partner_code: ProviderCode


class Partnership(PartnershipBase, table=True):
    """Accredited provider to lead partner as Manage records it, apart from Publish's record."""

    __tablename__ = "manage_partnership"
    __table_args__ = (UniqueConstraint("accredited_provider_code", "lead_partner_code"),)
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime | None = utc_field()


class PartnershipCreate(PartnershipBase):
    pass


class ApplicationView(BaseModel):
    application: ApplicationCopy
    notes: list[Note]


class ProviderUser(BaseModel):
    """Who decided: sent to Apply as the vendor API's `meta.attribution`."""

    full_name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    email: Bounded
    user_id: Bounded


class OfferDecision(BaseModel):
    conditions: list[Condition] = Field(default_factory=list, max_length=20)
    user: ProviderUser


class RejectDecision(BaseModel):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=65535)]
    user: ProviderUser


class ConditionsMetDecision(BaseModel):
    user: ProviderUser


TABLES = (Note, Partnership)
