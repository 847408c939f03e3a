from collections.abc import Mapping
from functools import partial

import httpx
from fastapi import FastAPI

from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from systems.oracle.models import Application, Institution
from systems.oracle.settings import OracleSettings
from systems.record_system.jobs import decisions, submissions
from systems.record_system.models import mark_arrivals
from systems.record_system.routes import institutions_router


def create_app(
    settings: OracleSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or OracleSettings()
    arrivals = partial(mark_arrivals, Application, settings.student_id_prefix)
    return create_service(
        "oracle",
        settings,
        routers=[institutions_router(Institution)],
        tables=[Institution],
        copies={"application": CopyTarget(Application, after_apply=arrivals)},
        jobs=[decisions(Application), submissions(Application, Institution)],
        transports=transports,
    )
