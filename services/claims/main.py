from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from services.claims.models import COPIES, TABLES
from services.claims.routes import router
from services.claims.settings import ClaimsSettings


def create_app(
    settings: ClaimsSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "claims",
        settings or ClaimsSettings(),
        routers=[router],
        tables=TABLES,
        copies=COPIES,
        transports=transports,
        topology=LINE,
    )
