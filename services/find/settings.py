from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class FindSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FIND_", extra="ignore")
