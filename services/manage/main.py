from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from services.manage.models import TABLES, ApplicationCopy
from services.manage.routes import router
from services.manage.settings import ManageSettings


def create_app(
    settings: ManageSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "manage",
        settings or ManageSettings(),
        routers=[router],
        tables=TABLES,
        copies={"application": CopyTarget(ApplicationCopy)},
        transports=transports,
        topology=LINE,
    )
