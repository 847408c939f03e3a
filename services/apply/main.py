from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from services.apply import register_api, routes, vendor_api
from services.apply.models import (
    TABLES,
    CourseCopy,
    ProviderCopy,
    SiteCopy,
    sites_in_use,
    touch_choices_of_moved_courses,
)
from services.apply.settings import ApplySettings


def create_app(
    settings: ApplySettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    app = create_service(
        "apply",
        settings or ApplySettings(),
        routers=[routes.router, vendor_api.router, register_api.router],
        tables=TABLES,
        copies={
            "provider": CopyTarget(ProviderCopy),
            "course": CopyTarget(CourseCopy, after_apply=touch_choices_of_moved_courses),
            "site": CopyTarget(SiteCopy, referenced=sites_in_use),
        },
        transports=transports,
        topology=LINE,
    )
    vendor_api.add_error_handlers(app)
    return app
