"""One student record system as a service: its own universities, its copy of Apply's
applications, and the admissions office's jobs."""

from __future__ import annotations

from functools import partial

from lines.becoming_a_teacher.systems.record_system.jobs import decisions, submissions
from lines.becoming_a_teacher.systems.record_system.models import (
    ApplicationRecord,
    InstitutionRecord,
    mark_arrivals,
)
from lines.becoming_a_teacher.systems.record_system.routes import institutions_router
from lines.becoming_a_teacher.systems.record_system.settings import RecordSystemSettings
from serviceline.consumer.tables import CopyTarget
from serviceline.runtime.app import ServiceApp


def record_system(
    settings: type[RecordSystemSettings],
    *,
    application: type[ApplicationRecord],
    institution: type[InstitutionRecord],
) -> ServiceApp:
    arrivals = partial(mark_arrivals, application, settings.student_id_prefix)
    return ServiceApp(
        name=settings.system,
        settings=settings,
        routers=[institutions_router(institution)],
        tables=[institution],
        copies={"application": CopyTarget(application, after_apply=arrivals)},
        jobs=[decisions(application), submissions(application, institution)],
    )
