from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from systems.record_system.settings import RecordSystemSettings, Share


class ThesisSettings(RecordSystemSettings):
    model_config = SettingsConfigDict(env_prefix="THESIS_", extra="ignore")

    # its credentials, one per command path: decisions to Apply, trainees to Register and HESA
    upstream_tokens: dict[str, str] = Field(
        default_factory=lambda: {
            "apply": "thesis-apply-token",
            "register": "thesis-register-token",
            "hesa": "thesis-hesa-token",
        }
    )
    attribution: dict[str, str] = Field(
        default_factory=lambda: {
            "full_name": "Thesis admissions",
            "email": "admissions.thesis@example.ac.uk",
            "user_id": "thesis-integration",
        }
    )
    # polls every 4 hours and decides 20 minutes later, three days after an application
    # arrives; its offers are unconditional, so an accepted offer recruits at once; trainees go
    # out every night
    decide_schedule: str = "20 */4 * * *"
    decide_after: timedelta = timedelta(days=3)
    offer_share: Share = 0.85
    offer_conditions: list[str] = Field(default_factory=list)
    submit_schedule: str = "30 22 * * *"
    student_id_prefix: str = "T"
    study_mode_codes: dict[str, str] = Field(
        default_factory=lambda: {"full_time": "01", "part_time": "64"}
    )
