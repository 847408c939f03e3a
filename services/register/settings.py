from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class RegisterSettings(ServiceSettings):
    """Register's credentials (Apply's register API, DQT's TRN requests) and the record systems'
    for its API derive from the topology."""

    model_config = SettingsConfigDict(env_prefix="REGISTER_", extra="ignore")
