"""Identifiers the whole line shares, validated the same way wherever they appear."""

from typing import Annotated

from pydantic import StringConstraints

Urn = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Ukprn = Annotated[str, StringConstraints(pattern=r"^\d{8}$")]
ProviderCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3}$")]
CourseCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{4}$")]
SiteCode = Annotated[str, StringConstraints(pattern=r"^([A-Z0-9]{1,5}|-)$")]
Trn = Annotated[str, StringConstraints(pattern=r"^\d{7}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
