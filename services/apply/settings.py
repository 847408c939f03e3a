from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings
from serviceline.topology import LINE


class ApplySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPLY_", extra="ignore")

    # where a provider user sees an application: the vendor API's `application_url`
    manage_url: str = f"http://127.0.0.1:{LINE.service('manage').port}"
