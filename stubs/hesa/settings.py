from pydantic import Field
from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings
from serviceline.topology import RECORD_SYSTEMS


class HesaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HESA_", extra="ignore")

    # each student record system's token for submitting its trainees' records
    api_clients: dict[str, str] = Field(
        default_factory=lambda: {system: f"{system}-hesa-token" for system in RECORD_SYSTEMS}
    )
