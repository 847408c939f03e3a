from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class ClaimsSettings(ServiceSettings):
    """DQT's teacher lookups are open reads: Claims holds no credential for DQT."""

    model_config = SettingsConfigDict(env_prefix="CLAIMS_", extra="ignore")
