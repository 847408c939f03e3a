from collections.abc import Mapping
from functools import partial

import httpx
from fastapi import FastAPI

from lines.becoming_a_teacher.topology import LINE
from serviceline.app import create_app as create_service
from serviceline.deps import Kernel
from serviceline.scheduler import Job
from stubs.dqt.models import TABLES
from stubs.dqt.routes import router
from stubs.dqt.settings import DqtSettings
from stubs.dqt.trn import complete_trn_requests, pending_due


def trn_completions(kernel: Kernel) -> Job:
    return Job(
        "dqt.complete_trn_requests",
        None,
        partial(complete_trn_requests, kernel),
        due=partial(pending_due, kernel),
    )


def create_app(
    settings: DqtSettings | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    return create_service(
        "dqt",
        settings or DqtSettings(),
        routers=[router],
        tables=TABLES,
        jobs=[trn_completions],
        transports=transports,
        topology=LINE,
    )
