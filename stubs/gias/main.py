from collections.abc import Mapping
from functools import partial

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.deps import Kernel
from serviceline.scheduler import Job
from stubs.gias.extract import publish_daily_extract
from stubs.gias.models import TABLES
from stubs.gias.routes import router
from stubs.gias.settings import GiasSettings


def daily_extract(kernel: Kernel) -> Job:
    return Job("gias.daily_extract", "0 0 * * *", partial(publish_daily_extract, kernel))


def create_app(
    settings: GiasSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "gias",
        settings or GiasSettings(),
        routers=[router],
        tables=TABLES,
        jobs=[daily_extract],
        transports=transports,
        topology=LINE,
    )
