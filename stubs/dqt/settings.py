from datetime import timedelta

from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class DqtSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DQT_", extra="ignore")

    # how long a TRN request stays Pending before DQT creates the person
    trn_delay: timedelta = timedelta(hours=2)
