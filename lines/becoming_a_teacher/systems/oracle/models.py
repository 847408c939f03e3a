"""Oracle's tables: its copy of Apply's applications, and the universities running it."""

from lines.becoming_a_teacher.systems.record_system.models import (
    ApplicationRecord,
    InstitutionRecord,
)


class Application(ApplicationRecord, table=True):
    __tablename__ = "oracle_application"


class Institution(InstitutionRecord, table=True):
    __tablename__ = "oracle_institution"
