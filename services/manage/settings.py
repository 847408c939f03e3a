from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings


class ManageSettings(ServiceSettings):
    """Manage's one write credential, for decisions sent to Apply, derives from the topology."""

    model_config = SettingsConfigDict(env_prefix="MANAGE_", extra="ignore")
