"""Identifiers the whole line shares, validated the same way wherever they appear."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

# what a 64-bit integer column holds, on SQLite and PostgreSQL alike
MAX_INT = 2**63 - 1
# an academic or recruitment year as a number: the year it starts
AcademicYear = Annotated[int, Field(ge=2000, le=2100)]


def most_pages(per_page: int) -> int:
    """The highest page number whose offset a database can still take."""
    return MAX_INT // per_page


Urn = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Ukprn = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
ProviderCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")]
CourseCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{4}$")]
SiteCode = Annotated[str, StringConstraints(pattern=r"^([A-Z0-9]{1,5}|-)$")]
Trn = Annotated[str, StringConstraints(pattern=r"^\d{7}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


def _in_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# a time given without an offset means UTC, as the real APIs read `updated_since`
UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]


def husid(application_id: str) -> str:
    """The trainee's HESA unique student identifier, 13 digits, from the application id.

    Ten hex digits read as a number never exceed 13 decimal digits, so no two applications share
    a HUSID, and the same application always gets the same one.
    """
    return f"{int(application_id, 16):013d}"
