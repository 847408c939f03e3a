from datetime import timedelta

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class DqtSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DQT_", extra="ignore")

    # how long a TRN request stays Pending before DQT creates the person
    trn_delay: timedelta = timedelta(hours=2)
    # Register's token for the TRN request and route API: its command path into DQT
    api_clients: dict[str, str] = Field(default_factory=lambda: {"register": "register-dqt-token"})
