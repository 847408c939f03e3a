from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from lines.becoming_a_teacher.systems.record_system.settings import RecordSystemSettings, Share


class ThesisSettings(RecordSystemSettings):
    system: ClassVar[str] = "thesis"
    office: str = "Thesis admissions"
    # polls every 4 hours and decides 20 minutes later, three days after an application
    # arrives; its offers are unconditional, so an accepted offer recruits at once; trainees go
    # out every night
    decide_schedule: str = "20 */4 * * *"
    decide_after: timedelta = timedelta(days=3)
    offer_share: Share = 0.85
    offer_conditions: list[str] = Field(default_factory=list)
    submit_schedule: str = "30 22 * * *"
    student_id_prefix: ClassVar[str] = "T"
    study_mode_codes: dict[str, str] = Field(
        default_factory=lambda: {"full_time": "01", "part_time": "64"}
    )
