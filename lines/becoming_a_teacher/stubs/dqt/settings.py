from datetime import timedelta

from serviceline.runtime.settings import ServiceSettings


class DqtSettings(ServiceSettings):
    # how long a TRN request stays Pending before DQT creates the person
    trn_delay: timedelta = timedelta(hours=2)
