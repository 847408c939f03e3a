"""Claims funding regions, as Gias::CSVImporter assigns them to schools, and their hourly rates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, update

from lines.becoming_a_teacher.services.mentoring.models import FundingRegion, SchoolCopyBase
from serviceline.consumer.tables import AfterApply, Copy

INNER_LONDON = frozenset(
    {
        "Barking and Dagenham",
        "Brent",
        "Camden",
        "City of London",
        "Ealing",
        "Greenwich",
        "Hackney",
        "Hammersmith and Fulham",
        "Haringey",
        "Islington",
        "Kensington and Chelsea",
        "Lambeth",
        "Lewisham",
        "Merton",
        "Newham",
        "Southwark",
        "Tower Hamlets",
        "Wandsworth",
        "Westminster",
    }
)
OUTER_LONDON = frozenset(
    {
        "Barnet",
        "Bexley",
        "Bromley",
        "Croydon",
        "Enfield",
        "Harrow",
        "Havering",
        "Hillingdon",
        "Hounslow",
        "Kingston upon Thames",
        "Redbridge",
        "Richmond upon Thames",
        "Sutton",
        "Waltham Forest",
    }
)
# The real importer matches districts (DistrictAdministrative), which the copy does not hold: by
# local authority the fringe is its unitary authorities and Surrey, every district of which is
# fringe. The fringe districts of Essex, Hertfordshire, Kent and West Sussex count as the rest of
# England here, as their counties are only partly fringe.
FRINGE = frozenset({"Bracknell Forest", "Slough", "Windsor and Maidenhead", "Thurrock", "Surrey"})

# Region.claims_funding_available_per_hour, in pounds
HOURLY_RATES: dict[FundingRegion, Decimal] = {
    "Inner London": Decimal("53.60"),
    "Outer London": Decimal("48.25"),
    "Fringe": Decimal("45.10"),
    "Rest of England": Decimal("43.80"),
}
PENNY = Decimal("0.01")


def funding_region(local_authority_name: str | None) -> FundingRegion:
    if local_authority_name in INNER_LONDON:
        return "Inner London"
    if local_authority_name in OUTER_LONDON:
        return "Outer London"
    if local_authority_name in FRINGE:
        return "Fringe"
    return "Rest of England"


def hourly_rate(region: FundingRegion | None) -> Decimal:
    return HOURLY_RATES[region or "Rest of England"]


def assign_funding_regions(model: type[SchoolCopyBase]) -> AfterApply:
    """The importer's last step: every school it upserted gets the region of its local authority."""

    def assign(session: Session, rows: list[dict[str, Any]], _: Mapping[str, Copy]) -> None:
        regions: dict[FundingRegion, list[str]] = defaultdict(list)
        for row in rows:
            regions[funding_region(row["local_authority_name"])].append(row["urn"])
        for region, urns in regions.items():
            session.exec(
                update(model).where(col(model.urn).in_(urns)).values(funding_region=region)
            )

    return assign
