"""What every record system keeps: its copy of Apply's applications and the universities it runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import StringConstraints
from sqlmodel import AutoString, Field, Session, SQLModel, col, select, update

from lines.becoming_a_teacher.identifiers import ProviderCode, Ukprn, husid
from serviceline.consumer.tables import Copy
from serviceline.model.fields import Name
from serviceline.runtime.db import utc_field

# Apply's application ids: ten hex digits (services/apply/models.py)
ApplicationId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{10}$")]
Decision = Literal["offer", "reject"]


class ApplicationRecord(Copy):
    """An application as this system last polled it from Apply, and what it did with it since.

    Apply's columns change only at the next poll: a decision sent from here shows in them then.
    """

    id: ApplicationId = Field(primary_key=True)
    status: str = Field(index=True)
    first_name: str
    last_name: str
    date_of_birth: date | None = None
    email: str
    provider_code: str = Field(index=True)
    course_code: str
    site_code: str | None = None
    study_mode: str
    recruited_at: datetime | None = utc_field()
    application_updated_at: datetime | None = utc_field()

    # this system's own, never sent back to Apply's copy
    arrived_at: datetime | None = utc_field(index=True)
    husid: str | None = None
    provider_trainee_id: str | None = None
    decision: Decision | None = Field(default=None, sa_type=AutoString)
    decided_at: datetime | None = utc_field()
    conditions_met_at: datetime | None = utc_field()
    register_trainee_id: str | None = None
    submitted_to_register_at: datetime | None = utc_field()
    submitted_to_hesa_at: datetime | None = utc_field()


class InstitutionBase(SQLModel):
    """A university this system runs: whose UKPRN its HESA returns carry."""

    provider_code: ProviderCode = Field(primary_key=True)
    ukprn: Ukprn
    name: Name


class InstitutionRecord(InstitutionBase):
    set_up_at: datetime | None = utc_field()


class InstitutionCreate(InstitutionBase):
    pass


def mark_arrivals(
    model: type[ApplicationRecord],
    prefix: str,
    session: Session,
    rows: list[dict[str, Any]],
    _: Mapping[str, Copy],
) -> None:
    """Enrol each application seen for the first time: when it arrived, its trainee's ids."""
    keys = [row["id"] for row in rows]
    new: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        unseen = col(model.id).in_(chunk), col(model.arrived_at).is_(None)
        new.update(session.exec(select(model.id).where(*unseen)))
    arrivals = [
        {
            "id": row["id"],
            "arrived_at": row["copied_at"],
            "husid": husid(row["id"]),
            "provider_trainee_id": f"{prefix}{row['id'].upper()}",
        }
        for row in rows
        if row["id"] in new
    ]
    if arrivals:
        session.exec(update(model), params=arrivals)
