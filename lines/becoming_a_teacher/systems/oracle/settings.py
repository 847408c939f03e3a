from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from lines.becoming_a_teacher.systems.record_system.settings import RecordSystemSettings, Share


class OracleSettings(RecordSystemSettings):
    system: ClassVar[str] = "oracle"
    office: str = "Oracle Student Cloud admissions"
    # polls every 30 minutes but takes five days to decide; half get an offer, with three
    # conditions confirmed three weeks after acceptance; trainees go out on Monday mornings
    decide_schedule: str = "10,40 * * * *"
    decide_after: timedelta = timedelta(days=5)
    offer_share: Share = 0.5
    offer_conditions: list[str] = Field(
        default_factory=lambda: [
            "Degree certificate",
            "Enhanced DBS check",
            "Occupational health clearance",
        ]
    )
    confirm_after: timedelta = timedelta(days=21)
    submit_schedule: str = "30 6 * * 1"
    student_id_prefix: ClassVar[str] = "O"
    study_mode_codes: dict[str, str] = Field(
        default_factory=lambda: {"full_time": "02", "part_time": "31"}
    )
