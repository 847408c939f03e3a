from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from serviceline.app import create_app as create_service
from services.mentoring.copies import copy_targets
from services.placements.models import (
    TABLES,
    Mentor,
    Provider,
    School,
    Subject,
    Teacher,
    providers_in_use,
    schools_in_use,
)
from services.placements.routes import router
from services.placements.settings import PlacementsSettings


def create_app(
    settings: PlacementsSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "placements",
        settings or PlacementsSettings(),
        routers=[router],
        tables=TABLES,
        copies=copy_targets(
            school=School,
            provider=Provider,
            subject=Subject,
            teacher=Teacher,
            mentor=Mentor,
            schools_in_use=schools_in_use,
            providers_in_use=providers_in_use,
        ),
        transports=transports,
    )
