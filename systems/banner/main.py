from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from systems.banner.models import Application, Institution
from systems.banner.settings import BannerSettings
from systems.record_system.app import record_system_app


def create_app(
    settings: BannerSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return record_system_app(
        "banner",
        settings or BannerSettings(),
        application=Application,
        institution=Institution,
        transports=transports,
    )
