from pydantic import Field
from pydantic_settings import SettingsConfigDict

from serviceline.settings import ServiceSettings
from serviceline.topology import LINE, RECORD_SYSTEMS


class ApplySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPLY_", extra="ignore")

    # vendor name -> bearer token for the vendor API; Manage is one vendor among SRSs
    vendor_tokens: dict[str, str] = Field(
        default_factory=lambda: {
            "manage": "manage-vendor-token",
            **{system: f"{system}-apply-token" for system in RECORD_SYSTEMS},
        }
    )
    # where a provider user sees an application: the vendor API's `application_url`
    manage_url: str = f"http://127.0.0.1:{LINE.service('manage').port}"
    # Register's token for the register API, the only reader of recruited applications
    register_api_token: str = "register-apply-token"
