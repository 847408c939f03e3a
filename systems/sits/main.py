from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from systems.record_system.app import record_system_app
from systems.sits.models import Application, Institution
from systems.sits.settings import SitsSettings


def create_app(
    settings: SitsSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return record_system_app(
        "sits",
        settings or SitsSettings(),
        application=Application,
        institution=Institution,
        transports=transports,
    )
