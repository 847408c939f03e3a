"""Field types every service may share, validated the same way wherever they appear."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# what a 64-bit integer column holds, on SQLite and PostgreSQL alike
MAX_INT = 2**63 - 1


def most_pages(per_page: int) -> int:
    """The highest page number whose offset a database can still take."""
    return MAX_INT // per_page


Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


def _in_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# a time given without an offset means UTC, as the real APIs read `updated_since`
UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]
