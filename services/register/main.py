"""Register trainee teachers: trainees from Apply's recruits and record systems, TRNs from DQT."""

from collections.abc import Mapping

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.copier import CopyTarget
from services.register import api, routes
from services.register.imports import apply_import, hesa_sync
from services.register.models import (
    TABLES,
    ApplyApplication,
    CourseCopy,
    DqtTeacher,
    HesaRecord,
    School,
    Subject,
    courses_in_use,
    schools_in_use,
    subjects_in_use,
)
from services.register.settings import RegisterSettings
from services.register.trn import trn_retrieval


def create_app(
    settings: RegisterSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    app = create_service(
        "register",
        settings or RegisterSettings(),
        routers=[routes.router, api.router],
        tables=TABLES,
        copies={
            "subject": CopyTarget(Subject, referenced=subjects_in_use),
            "course": CopyTarget(CourseCopy, referenced=courses_in_use),
            "application": CopyTarget(ApplyApplication),
            "school": CopyTarget(School, referenced=schools_in_use),
            "itt_record": CopyTarget(HesaRecord),
            "teacher": CopyTarget(DqtTeacher),
        },
        jobs=[apply_import, hesa_sync, trn_retrieval],
        transports=transports,
        topology=LINE,
    )
    api.add_error_handlers(app)
    return app
