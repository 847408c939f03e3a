from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from systems.record_system.app import record_system_app
from systems.thesis.models import Application, Institution
from systems.thesis.settings import ThesisSettings


def create_app(
    settings: ThesisSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return record_system_app(
        "thesis",
        settings or ThesisSettings(),
        application=Application,
        institution=Institution,
        transports=transports,
    )
