"""TRN requests: each completes after DQT's delay, as a new person with the next free TRN."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from anyio import to_thread
from sqlmodel import Session, col, func, select

from lines.becoming_a_teacher.stubs.dqt.models import FIRST_TRN, Teacher, TrnRequest
from serviceline.runtime.deps import Kernel
from serviceline.runtime.scheduler import Job

LAST_TRN = 9999999


def next_completion(session: Session) -> datetime | None:
    """When the earliest pending request falls due: what the completion job waits for."""
    due: datetime | None = session.exec(
        select(func.min(TrnRequest.due_at)).where(TrnRequest.status == "Pending")
    ).one()
    return due


def next_trn(session: Session) -> int:
    top = session.exec(select(func.max(Teacher.trn))).one()
    return FIRST_TRN if top is None else max(FIRST_TRN, int(top) + 1)


def complete_due(session: Session, now: datetime) -> int:
    """Create a person for every request due by `now`; never match them to anyone on record.

    A trainee may share a name and birth date with someone DQT already holds (a widow drawing
    a partner's pension, say): only a person's TRN says who they are, so each request is new.
    """
    due = list(
        session.exec(
            select(TrnRequest)
            .where(TrnRequest.status == "Pending", col(TrnRequest.due_at) <= now)
            .order_by(col(TrnRequest.due_at), col(TrnRequest.request_id))
        )
    )
    trn = next_trn(session)
    if due and trn + len(due) - 1 > LAST_TRN:
        raise RuntimeError(f"no free TRNs left for {len(due)} requests")
    for request in due:
        session.add(
            Teacher(
                trn=f"{trn:07d}",
                first_name=request.first_name,
                middle_name=request.middle_name,
                last_name=request.last_name,
                date_of_birth=request.date_of_birth,
                email=request.email_addresses[0] if request.email_addresses else None,
                national_insurance_number=request.national_insurance_number,
                kind="trainee",
                created_at=now,
                source_trn_request_id=request.request_id,
            )
        )
        request.sqlmodel_update({"status": "Completed", "trn": f"{trn:07d}", "completed_at": now})
        session.add(request)
        trn += 1
    session.flush()
    return len(due)


def pending_due(kernel: Kernel) -> datetime | None:
    with Session(kernel.engine) as session:
        return next_completion(session)


async def complete_trn_requests(kernel: Kernel) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with kernel.session() as session:
            completed = complete_due(session, kernel.clock.now())
            session.commit()
            return {"completed": completed}

    return await to_thread.run_sync(run)


def trn_completions(kernel: Kernel) -> Job:
    return Job(
        "dqt.complete_trn_requests",
        None,
        partial(complete_trn_requests, kernel),
        due=partial(pending_due, kernel),
    )
