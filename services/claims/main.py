from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from serviceline.app import create_app as create_service
from services.claims.models import (
    TABLES,
    Mentor,
    Provider,
    School,
    Subject,
    Teacher,
    providers_in_use,
    schools_in_use,
)
from services.claims.routes import router
from services.claims.settings import ClaimsSettings
from services.mentoring.copies import copy_targets


def create_app(
    settings: ClaimsSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "claims",
        settings or ClaimsSettings(),
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
