from datetime import timedelta
from typing import ClassVar

from pydantic import Field

from lines.becoming_a_teacher.systems.record_system.settings import RecordSystemSettings, Share


class BannerSettings(RecordSystemSettings):
    system: ClassVar[str] = "banner"
    office: str = "Banner admissions"
    # polls hourly and decides ten minutes later, a day after an application arrives;
    # one condition, confirmed within a week; trainees go out every night
    decide_schedule: str = "10 * * * *"
    decide_after: timedelta = timedelta(days=1)
    offer_share: Share = 0.6
    offer_conditions: list[str] = Field(default_factory=lambda: ["Enhanced DBS check"])
    confirm_after: timedelta = timedelta(days=7)
    submit_schedule: str = "0 2 * * *"
    student_id_prefix: ClassVar[str] = "B"
    study_mode_codes: dict[str, str] = Field(
        default_factory=lambda: {"full_time": "63", "part_time": "64"}
    )
