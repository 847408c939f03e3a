from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from services.publish import public_v1, routes
from services.publish.models import TABLES, GiasSchool
from services.publish.settings import PublishSettings


def create_app(
    settings: PublishSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    app = create_service(
        "publish",
        settings or PublishSettings(),
        routers=[routes.router, public_v1.router],
        tables=TABLES,
        copies={"school": CopyTarget(GiasSchool)},
        transports=transports,
        topology=LINE,
    )
    app.add_exception_handler(public_v1.ApiV1Error, public_v1.api_v1_error)
    return app
