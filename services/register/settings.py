from pydantic import Field
from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings
from serviceline.topology import RECORD_SYSTEMS


class RegisterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTER_", extra="ignore")

    # Register's credentials: Apply's register API to read recruits, and its command path
    # into DQT (TRN requests and route statuses); DQT's api_clients hold the same token
    upstream_tokens: dict[str, str] = Field(
        default_factory=lambda: {"apply": "register-apply-token", "dqt": "register-dqt-token"}
    )
    # the student record systems that push their trainees through the Register API
    api_clients: dict[str, str] = Field(
        default_factory=lambda: {system: f"{system}-register-token" for system in RECORD_SYSTEMS}
    )
