from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from services.find.models import CourseCopy, ProviderCopy
from services.find.routes import router
from services.find.settings import FindSettings


def create_app(
    settings: FindSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "find",
        settings or FindSettings(),
        routers=[router],
        copies={"provider": CopyTarget(ProviderCopy), "course": CopyTarget(CourseCopy)},
        transports=transports,
        topology=LINE,
    )
