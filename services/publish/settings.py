from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class PublishSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PUBLISH_", extra="ignore")
