"""The DfE line's identifiers, validated the same way wherever they appear."""

from typing import Annotated

from pydantic import Field, StringConstraints

# an academic or recruitment year as a number: the year it starts
AcademicYear = Annotated[int, Field(ge=2000, le=2100)]
Urn = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Ukprn = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
ProviderCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")]
CourseCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{4}$")]
SiteCode = Annotated[str, StringConstraints(pattern=r"^([A-Z0-9]{1,5}|-)$")]
Trn = Annotated[str, StringConstraints(pattern=r"^\d{7}$")]


def husid(application_id: str) -> str:
    """The trainee's HESA unique student identifier, 13 digits, from the application id.

    Ten hex digits read as a number never exceed 13 decimal digits, so no two applications share
    a HUSID, and the same application always gets the same one.
    """
    return f"{int(application_id, 16):013d}"
