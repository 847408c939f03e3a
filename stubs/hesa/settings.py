from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class HesaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HESA_", extra="ignore")
