from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from lines.becoming_a_teacher.systems.record_system.settings import RecordSystemSettings, Share


class SitsSettings(RecordSystemSettings):
    system: ClassVar[str] = "sits"
    office: str = "SITS:Vision admissions"
    # polls every 15 minutes, decides a few minutes after each poll, two days after an
    # application arrives; most offers carry two conditions; trainees go out on Friday evenings
    decide_schedule: str = "5,20,35,50 * * * *"
    decide_after: timedelta = timedelta(days=2)
    offer_share: Share = 0.75
    offer_conditions: list[str] = Field(
        default_factory=lambda: ["Enhanced DBS check", "Fitness to teach"]
    )
    confirm_after: timedelta = timedelta(days=14)
    submit_schedule: str = "0 18 * * 5"
    student_id_prefix: ClassVar[str] = "S"
    study_mode_codes: dict[str, str] = Field(
        default_factory=lambda: {"full_time": "01", "part_time": "31"}
    )
