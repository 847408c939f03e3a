from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class GiasSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GIAS_", extra="ignore")
