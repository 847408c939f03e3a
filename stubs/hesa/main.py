from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from stubs.hesa.models import TABLES
from stubs.hesa.routes import router
from stubs.hesa.settings import HesaSettings


def create_app(
    settings: HesaSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "hesa",
        settings or HesaSettings(),
        routers=[router],
        tables=TABLES,
        transports=transports,
        topology=LINE,
    )
