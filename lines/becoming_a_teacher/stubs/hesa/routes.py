"""HESA's ITT collection: record systems submit `<Student>` records, Register reads the census."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.readers import HESA_COLLECTION, hesa_collection
from lines.becoming_a_teacher.stubs.hesa.census import render, student_public
from lines.becoming_a_teacher.stubs.hesa.models import ITTRecord, Student, StudentPublic
from lines.becoming_a_teacher.topology import LINE
from serviceline.model.credentials import Rule
from serviceline.runtime.crud import get_or_404
from serviceline.runtime.deps import CommandAuth, Kernel, KernelDep, SessionDep, guard, personal

router = APIRouter(prefix="/apis/itt/1.1", tags=["itt collection"])
StudentReads = Depends(guard(personal("itt_record", Rule("HESA's students"), LINE)))
# the collection Register downloads: Register's credential reads it
CollectionReads = Depends(
    guard(
        personal(
            "itt_record",
            Rule("HESA's ITT collection", reads=("itt_record", HESA_COLLECTION)),
            LINE,
        )
    )
)
FromDate = Annotated[date, Path(description="YYYY-MM-DD: records changed on or after this day")]


def current_collection(kernel: Kernel) -> str:
    return hesa_collection(kernel.settings.recruitment_cycle_year)


def submit(session: Session, students: Sequence[Student]) -> tuple[list[ITTRecord], int]:
    """Store each record whole, replacing any with its HUSID: the records and how many are new."""
    husids = [student.husid for student in students]
    records: dict[str, ITTRecord] = {}
    for start in range(0, len(husids), 500):
        chunk = husids[start : start + 500]
        found = session.exec(select(ITTRecord).where(col(ITTRecord.husid).in_(chunk)))
        records.update((record.husid, record) for record in found)
    created = 0
    for student in students:
        values = student.model_dump()
        record = records.get(student.husid)
        if record is None:
            record = records[student.husid] = ITTRecord.model_validate(values)
            created += 1
        else:
            record.sqlmodel_update(values)
        session.add(record)
    session.flush()
    return [records[husid] for husid in husids], created


@router.post(
    "/students",
    status_code=201,
    dependencies=[CommandAuth],
    responses={200: {"model": StudentPublic, "description": "the last submission replaced"}},
)
def create_student(
    body: Student, session: SessionDep, kernel: KernelDep, response: Response
) -> StudentPublic:
    """Submit one record: 201 when its HUSID is new, 200 when it replaces the last submission."""
    (record,), created = submit(session, [body])
    if not created:
        response.status_code = status.HTTP_200_OK
    return student_public(record, current_collection(kernel))


@router.post("/students/batch", status_code=201, dependencies=[CommandAuth])
def create_students(body: list[Student], session: SessionDep) -> dict[str, int]:
    records, created = submit(session, body)
    return {"created": created, "updated": len(records) - created}


@router.get("/students/{husid}", dependencies=[StudentReads])
def read_student(husid: str, session: SessionDep, kernel: KernelDep) -> StudentPublic:
    record = get_or_404(session, ITTRecord, husid, field="husid", what="ITT record with HUSID")
    return student_public(record, current_collection(kernel))


@router.get("/CensusData/{collection}/{from_date}", dependencies=[CollectionReads])
def read_census(
    collection: str, from_date: FromDate, session: SessionDep, kernel: KernelDep
) -> Response:
    """Every record changed on or after `from_date`, one `<Student>` each, oldest change first."""
    current = current_collection(kernel)
    if collection != current:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"collection: no ITT collection {collection!r}; this cycle's is {current}",
        )
    since = datetime.combine(from_date, time(), tzinfo=UTC)
    records = session.exec(
        select(ITTRecord)
        .where(col(ITTRecord.updated_at) >= since)
        .order_by(col(ITTRecord.updated_at), col(ITTRecord.husid))
    )
    students = (student_public(record, current) for record in records)
    return Response(render(students), media_type="application/xml")
