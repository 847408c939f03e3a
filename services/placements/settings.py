from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class PlacementsSettings(ServiceSettings):
    """DQT's teacher lookups are open reads: Placements holds no credential for DQT."""

    model_config = SettingsConfigDict(env_prefix="PLACEMENTS_", extra="ignore")
