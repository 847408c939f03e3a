from pydantic import Field
from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class ManageSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MANAGE_", extra="ignore")

    # a vendor API token: the only write credential Manage holds, for decisions sent to Apply
    upstream_tokens: dict[str, str] = Field(
        default_factory=lambda: {"apply": "manage-vendor-token"}
    )
