"""One student record system's app: its own universities, its copy of Apply's applications."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from systems.record_system.jobs import decisions, submissions
from systems.record_system.models import ApplicationRecord, InstitutionRecord, mark_arrivals
from systems.record_system.routes import institutions_router
from systems.record_system.settings import RecordSystemSettings


def record_system_app(
    name: str,
    settings: RecordSystemSettings,
    *,
    application: type[ApplicationRecord],
    institution: type[InstitutionRecord],
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    arrivals = partial(mark_arrivals, application, settings.student_id_prefix)
    return create_service(
        name,
        settings,
        routers=[institutions_router(institution)],
        tables=[institution],
        copies={"application": CopyTarget(application, after_apply=arrivals)},
        jobs=[decisions(application), submissions(application, institution)],
        transports=transports,
        topology=LINE,
    )
