"""The daily edubasealldata<YYYYMMDD>.csv: the columns the line's services read, real names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from anyio import to_thread
from sqlmodel import Session, col, delete, select

from serviceline.deps import Kernel
from stubs.gias.models import (
    GOR_NAMES,
    GROUP_NAMES,
    PHASE_NAMES,
    STATUS_NAMES,
    TYPE_NAMES,
    Extract,
    School,
)

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
KEEP_DAYS = 7


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


def render(schools: Iterable[School]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(edubase_row(school) for school in schools)
    return out.getvalue().encode("windows-1252", errors="replace")


def write_extract(session: Session, day: date) -> Extract:
    extract = session.get(Extract, day) or Extract(day=day, content=b"")
    extract.content = render(session.exec(select(School).order_by(col(School.urn))))
    session.add(extract)
    session.exec(delete(Extract).where(col(Extract.day) < day - timedelta(days=KEEP_DAYS)))
    session.flush()
    return extract


async def publish_daily_extract(kernel: Kernel) -> dict[str, Any]:
    """Just after midnight, yesterday's file: what consumers will fetch that day."""

    def run() -> dict[str, Any]:
        day = (kernel.clock.now() - timedelta(days=1)).date()
        with kernel.session() as session:
            extract = write_extract(session, day)
            session.commit()
            return {"day": day.isoformat(), "bytes": len(extract.content)}

    return await to_thread.run_sync(run)
