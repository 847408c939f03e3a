from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from services.placements.models import COPIES, TABLES
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
        copies=COPIES,
        transports=transports,
        topology=LINE,
    )
