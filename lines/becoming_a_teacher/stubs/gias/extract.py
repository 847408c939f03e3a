"""The daily edubasealldata<YYYYMMDD>.csv: the columns the line's services read, real names."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta
from functools import partial
from typing import Any

from anyio import to_thread
from sqlmodel import Session, col, delete, select

from lines.becoming_a_teacher.stubs.gias.models import COLUMNS, Extract, School, edubase_row
from serviceline.runtime.deps import Kernel
from serviceline.runtime.scheduler import Job

KEEP_DAYS = 7


def render(schools: Iterable[School]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(edubase_row(school) for school in schools)
    return out.getvalue().encode("windows-1252", errors="replace")


def write_extract(session: Session, day: date) -> Extract:
    extract = session.get(Extract, day) or Extract(day=day, content=b"")
    extract.content = render(session.exec(select(School).order_by(col(School.urn))))
    session.add(extract)
    session.exec(delete(Extract).where(col(Extract.day) < day - timedelta(days=KEEP_DAYS)))
    session.flush()
    return extract


async def publish_daily_extract(kernel: Kernel) -> dict[str, Any]:
    """Just after midnight, yesterday's file: what consumers will fetch that day."""

    def run() -> dict[str, Any]:
        day = (kernel.clock.now() - timedelta(days=1)).date()
        with kernel.session() as session:
            extract = write_extract(session, day)
            session.commit()
            return {"day": day.isoformat(), "bytes": len(extract.content)}

    return await to_thread.run_sync(run)


def daily_extract(kernel: Kernel) -> Job:
    return Job("gias.daily_extract", "0 0 * * *", partial(publish_daily_extract, kernel))
