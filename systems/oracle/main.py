from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from systems.oracle.models import Application, Institution
from systems.oracle.settings import OracleSettings
from systems.record_system.app import record_system_app


def create_app(
    settings: OracleSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return record_system_app(
        "oracle",
        settings or OracleSettings(),
        application=Application,
        institution=Institution,
        transports=transports,
    )
