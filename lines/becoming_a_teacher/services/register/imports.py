"""Register's own daily jobs: trainees made from its copies of Apply's recruits and of HESA."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any

from anyio import to_thread
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.register.codes import (
    COURSE_SUBJECTS,
    ITT_AIMS,
    PROGRAM_ROUTES,
    STUDY_MODES,
    UNIVERSITY_ROUTE,
    course_subject,
)
from lines.becoming_a_teacher.services.register.models import (
    ApplyApplication,
    CourseCopy,
    HesaRecord,
    Subject,
    Trainee,
)
from serviceline.runtime.deps import Kernel
from serviceline.runtime.scheduler import Job


def trainee_from_application(
    application: ApplyApplication, course: CourseCopy, subjects: dict[str, str], now: datetime
) -> Trainee:
    """A draft trainee from Register's copies alone: the application, its course, its subjects."""
    taught = [course_subject(subjects[code]) for code in course.subject_codes if code in subjects]
    one, two, three = ([name for name in taught if name is not None] + [None] * 3)[:3]
    start = course.published_start_date
    end = None
    if start is not None:
        # Register's copy has no course length: a postgraduate course ends the July after it
        # starts, a year later part time
        end = date(start.year + (2 if application.study_mode == "part_time" else 1), 7, 31)
    return Trainee(
        record_source="apply",
        apply_id=application.apply_id,
        first_names=application.first_name,
        last_name=application.last_name,
        date_of_birth=application.date_of_birth,
        email=application.email,
        provider_code=application.provider_code,
        course_uuid=course.uuid,
        training_route=PROGRAM_ROUTES.get(course.route),
        study_mode=application.study_mode,
        course_subject_one=one,
        course_subject_two=two,
        course_subject_three=three,
        course_min_age=course.min_age,
        course_max_age=course.max_age,
        itt_start_date=start,
        itt_end_date=end,
        created_at=now,
    )


def create_from_apply(session: Session, now: datetime) -> dict[str, int]:
    """Trainees::CreateFromApplyJob: each importable recruit becomes a draft trainee."""
    # a recruit to a university course is not imported (universities add their own trainees);
    # one whose course Register has not copied yet waits for the next run
    applications = session.exec(
        select(ApplyApplication).where(
            ApplyApplication.import_state == "importable", ApplyApplication.status == "recruited"
        )
    ).all()
    providers = {application.provider_code for application in applications}
    courses = {
        (course.provider_code, course.code): course
        for course in session.exec(
            select(CourseCopy).where(col(CourseCopy.provider_code).in_(providers))
        )
    }
    subjects = {subject.code: subject.name for subject in session.exec(select(Subject))}
    counts = {"created": 0, "non_importable_hei": 0, "waiting_for_course": 0}
    for application in applications:
        course = courses.get((application.provider_code, application.course_code))
        if course is None:
            counts["waiting_for_course"] += 1
            continue
        if course.route == UNIVERSITY_ROUTE:
            application.import_state = "non_importable_hei"
            counts["non_importable_hei"] += 1
        else:
            session.add(trainee_from_application(application, course, subjects, now))
            application.import_state = "imported"
            counts["created"] += 1
        session.add(application)
    session.flush()
    return counts


def hesa_fields(record: HesaRecord) -> dict[str, Any]:
    """A trainee's fields as HESA's record gives them, codes turned into Register's values."""
    return {
        "first_names": record.first_names,
        "last_name": record.last_name,
        "date_of_birth": record.date_of_birth,
        "email": record.email,
        "ukprn": record.ukprn,
        "provider_trainee_id": record.provider_trainee_id,
        "itt_aim": record.itt_aim if record.itt_aim in ITT_AIMS else None,
        "study_mode": STUDY_MODES.get(record.study_mode or ""),
        "itt_start_date": record.itt_start_date,
        "course_subject_one": COURSE_SUBJECTS.get(record.course_subject_one or ""),
    }


def sync_students(session: Session, now: datetime) -> dict[str, int]:
    """Hesa::SyncStudentsJob: create or update a trainee for each copied record, by HESA id."""
    records = session.exec(select(HesaRecord)).all()
    known = {
        trainee.hesa_id: trainee
        for trainee in session.exec(select(Trainee).where(col(Trainee.hesa_id).is_not(None)))
    }
    counts = {"created": 0, "updated": 0, "unchanged": 0, "incomplete": 0}
    for record in records:
        if not (record.first_names and record.last_name and record.date_of_birth):
            counts["incomplete"] += 1
            continue
        fields = hesa_fields(record)
        trainee = known.get(record.hesa_id)
        if trainee is None:
            trainee = Trainee(
                record_source="hesa",
                hesa_id=record.hesa_id,
                trn=record.trn,
                state="trn_received" if record.trn else "draft",
                created_at=now,
                **fields,
            )
            counts["created"] += 1
        else:
            changed = {
                name: value for name, value in fields.items() if getattr(trainee, name) != value
            }
            if not changed:
                counts["unchanged"] += 1
                continue
            trainee.sqlmodel_update(changed)
            counts["updated"] += 1
        session.add(trainee)
    session.flush()
    return counts


Chore = Callable[[Session, datetime], dict[str, int]]


async def run(kernel: Kernel, chore: Chore) -> dict[str, int]:
    def work() -> dict[str, int]:
        with kernel.session() as session:
            counts = chore(session, kernel.clock.now())
            session.commit()
            return counts

    return await to_thread.run_sync(work)


def apply_import(kernel: Kernel) -> Job:
    return Job(
        "register.create_trainees_from_apply", "0 4 * * *", partial(run, kernel, create_from_apply)
    )


def hesa_sync(kernel: Kernel) -> Job:
    return Job("register.sync_hesa_students", "0 5 * * *", partial(run, kernel, sync_students))
