from serviceline.runtime.settings import ServiceSettings


class FindSettings(ServiceSettings):
    # keep no copy of Publish's courses: ask Publish for them on every search, as Find did
    # until 2022, when it called the Teacher Training API live
    read_through: bool = False

    def reads_through(self) -> frozenset[str]:
        return frozenset({"course"}) if self.read_through else frozenset()
