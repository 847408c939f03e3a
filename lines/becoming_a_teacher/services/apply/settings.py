from typing import ClassVar

from lines.becoming_a_teacher.topology import LINE
from serviceline.runtime.settings import ServiceSettings


class ApplySettings(ServiceSettings):
    links: ClassVar[tuple[str, ...]] = ("manage",)

    def manage_url(self) -> str:
        """Where a provider user sees an application: the vendor API's `application_url`."""
        default = f"http://127.0.0.1:{LINE.service('manage').port}"
        return self.public_urls.get("manage", default)
