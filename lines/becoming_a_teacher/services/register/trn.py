"""Register -> DQT: ask for a TRN, poll until it comes, keep DQT's route status current."""

# A command path, not a copy: Register posts TRN requests and route statuses to DQT, which owns
# every TRN. Its copy of the person DQT creates (`register_dqt_teacher`) is written here, by
# Register's own polling, as the `dqt.teacher.register` edge (mechanism EVENT) declares.
# DQT is called from worker threads, before a change is flushed: no write lock is held while
# DQT answers, and no database work blocks the event loop that serves DQT's answer.

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from anyio import from_thread, to_thread
from sqlmodel import Session, col, func, select

from lines.becoming_a_teacher.services.register.codes import (
    AGE_RANGE_CODES,
    SUBJECT_CODES,
    TrainingRoute,
)
from lines.becoming_a_teacher.services.register.models import (
    DqtTeacher,
    Trainee,
    TraineeEvent,
    TraineeState,
    TransitionError,
    TrnRequest,
)
from lines.becoming_a_teacher.topology import LINE
from serviceline.consumer.batches import CopyStats
from serviceline.runtime.db import upsert
from serviceline.runtime.deps import Kernel
from serviceline.runtime.scheduler import Job
from serviceline.runtime.upstream import Upstream, UpstreamError

# Trs::RetrieveTrnJob: a minute after the request, then hourly, for up to four days
FIRST_POLL = timedelta(minutes=1)
POLL_EVERY = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=4)
TEACHER_EDGE = LINE.edge("dqt.teacher.register")
# TRN requests sent to DQT's batch endpoint at once: each request well within the client's timeout
TRN_REQUESTS_AT_ONCE = 500

# DQT's route to professional status type per training route (Register's CodeSets::Trs)
ROUTE_TYPE_IDS: Mapping[TrainingRoute, str] = {
    "assessment_only": "57b86cef-98e2-4962-a74a-d47c7a34b838",
    "early_years_assessment_only": "d9eef3f8-fde6-4a3f-a361-f6655a42fa1e",
    "early_years_postgrad": "dbc4125b-9235-41e4-abd2-baabbf63f829",
    "early_years_salaried": "4477e45d-c531-4c63-9f4b-e157766366fb",
    "early_years_undergrad": "c97c0fd2-fd84-4949-97c7-b0e2422fb3c8",
    "hpitt_postgrad": "bfef20b2-5ac4-486d-9493-e5a4538e1be9",
    "iqts": "d0b60864-ab1c-4d49-a5c2-ff4bd9872ee1",
    "opt_in_undergrad": "20f67e38-f117-4b42-bbfc-5812aa717b94",
    "pg_teaching_apprenticeship": "6987240e-966e-485f-b300-23b54937fb3a",
    "provider_led_postgrad": "97497716-5ac5-49aa-a444-27fa3e2c152a",
    "provider_led_undergrad": "53a7fbda-25fd-4482-9881-5cf65053888d",
    "school_direct_salaried": "12a742c3-1cd4-43b7-a2fa-1000bd4cc373",
    "school_direct_tuition_fee": "d9490e58-acdc-4a38-b13e-5a5c21417737",
    # not in Register's list: this model's own, stable id
    "teacher_degree_apprenticeship": "311ef3a9-6aab-4c4e-a3a4-0b4d3bc7e1a5",
}
ROUTE_STATUSES: Mapping[TraineeState, str] = {
    "withdrawn": "Withdrawn",
    "deferred": "Deferred",
    "recommended_for_award": "Holds",
    "awarded": "Holds",
}
# DQT is told nothing more of a trainee once it has left or been awarded (INVALID_UPDATE_STATES)
FINAL_STATES: frozenset[TraineeState] = frozenset({"withdrawn", "awarded"})


class UnknownTrnError(ValueError):
    """The TRN a trainee was given is not one DQT knows."""


def route_status(trainee: Trainee) -> str | None:
    """The status of the trainee's route that DQT should hold: none while still a draft."""
    if trainee.state in ROUTE_STATUSES:
        return ROUTE_STATUSES[trainee.state]
    if trainee.state in ("submitted_for_trn", "trn_received"):
        return "UnderAssessment" if trainee.training_route == "assessment_only" else "InTraining"
    return None


def trn_request(request_id: str, trainee: Trainee) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "person": {
            "firstName": trainee.first_names,
            "middleName": trainee.middle_names,
            "lastName": trainee.last_name,
            "dateOfBirth": trainee.date_of_birth.isoformat(),
            "emailAddresses": [trainee.email] if trainee.email else [],
            # providers write it as "QQ 12 34 56 C"; DQT takes it without the spaces
            "nationalInsuranceNumber": trainee.ni_number.replace(" ", "")
            if trainee.ni_number
            else None,
        },
    }


def route(trainee: Trainee, status: str) -> dict[str, Any]:
    """The trainee's route to QTS as DQT's SetRouteToProfessionalStatusRequest carries it."""
    assert trainee.training_route is not None  # submission requires one
    subjects = (
        trainee.course_subject_one,
        trainee.course_subject_two,
        trainee.course_subject_three,
    )
    ages = (trainee.course_min_age, trainee.course_max_age)
    specialism = None
    if ages in AGE_RANGE_CODES:
        specialism = {"type": "Range", "from": ages[0], "to": ages[1]}
    return {
        "routeToProfessionalStatusTypeId": ROUTE_TYPE_IDS[trainee.training_route],
        "status": status,
        "holdsFrom": _day(trainee.outcome_date) if status == "Holds" else None,
        "trainingStartDate": _day(trainee.itt_start_date),
        "trainingEndDate": _day(trainee.itt_end_date),
        "trainingSubjectReferences": [SUBJECT_CODES[s] for s in subjects if s in SUBJECT_CODES],
        "trainingAgeSpecialism": specialism,
        "trainingProviderUkprn": trainee.ukprn,
    }


def standards_met(met: date | None, now: datetime) -> date:
    """The day QTS is held from: today unless given, and never later, which DQT refuses."""
    if met is None:
        return now.date()
    if met > now.date():
        raise ValueError(f"qts_standards_met_date: {met} is in the future")
    return met


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def report_status(dqt: Upstream, trainee: Trainee, now: datetime) -> None:
    """PUT the route status the trainee's state implies; once DQT holds QTS, it is awarded."""
    status = route_status(trainee)
    if trainee.trn is None or status is None:
        return
    path = f"/v3/persons/{trainee.trn}/routes-to-professional-statuses/{trainee.slug}"
    try:
        from_thread.run(dqt.put_json, path, route(trainee, status))
    except UpstreamError as error:
        if error.status == 404:
            raise UnknownTrnError(f"trn: DQT knows no person with TRN {trainee.trn}") from error
        raise
    if trainee.state == "recommended_for_award":
        trainee.move("award", now)


def change(
    session: Session,
    dqt: Upstream,
    trainee: Trainee,
    event: TraineeEvent,
    now: datetime,
    **changes: Any,
) -> Trainee:
    """Take one step of the trainee's state machine, and tell DQT what it means for the route."""
    trainee.move(event, now)
    trainee.sqlmodel_update(changes)
    report_status(dqt, trainee, now)
    session.add(trainee)
    session.flush()
    return trainee


def submit(
    dqt: Upstream, trainees: Sequence[Trainee], now: datetime, *, numbered: bool
) -> list[tuple[TrnRequest, dict[str, Any]]]:
    """Submit trainees, each checked before DQT hears of any; a batch's refusal says which,
    "[2] ...". One with a TRN already is reported straight away; the rest need a TRN request,
    returned with the body DQT is to be sent."""
    for index, trainee in enumerate(trainees):
        at = f"[{index}] " if numbered else ""
        for name in ("training_route", "itt_start_date", "itt_end_date"):
            if getattr(trainee, name) is None:
                raise ValueError(
                    f"{at}{name}: DQT needs it before the trainee can be submitted for a TRN"
                )
        try:
            trainee.move("submit_for_trn", now)
        except TransitionError as error:
            raise TransitionError(f"{at}{error}") from error
    asks = []
    for index, trainee in enumerate(trainees):
        if trainee.trn is not None:
            trainee.move("receive_trn", now)
            try:
                report_status(dqt, trainee, now)
            except UnknownTrnError as error:
                at = f"[{index}] " if numbered else ""
                raise UnknownTrnError(f"{at}{error}") from error
            continue
        request = TrnRequest(
            request_id=str(uuid.uuid4()),
            slug=trainee.slug,
            requested_at=now,
            next_poll_at=now + FIRST_POLL,
            give_up_at=now + GIVE_UP_AFTER,
        )
        asks.append((request, trn_request(request.request_id, trainee)))
    return asks


def submit_for_trn(session: Session, dqt: Upstream, trainee: Trainee, now: datetime) -> None:
    """Submit one trainee, as a provider does, and ask DQT for its TRN."""
    asks = submit(dqt, [trainee], now, numbered=False)
    for _request, body in asks:
        from_thread.run(dqt.post_json, "/v3/trn-requests", body)
    session.add_all([trainee, *(request for request, _body in asks)])
    session.flush()


def submit_all_for_trn(
    session: Session, dqt: Upstream, trainees: Sequence[Trainee], now: datetime
) -> None:
    """Submit many trainees, as a seed does: DQT is asked for their TRNs in one request per
    chunk, which it takes as that many single requests."""
    asks = submit(dqt, trainees, now, numbered=True)
    bodies = [body for _request, body in asks]
    for start in range(0, len(bodies), TRN_REQUESTS_AT_ONCE):
        chunk = bodies[start : start + TRN_REQUESTS_AT_ONCE]
        from_thread.run(dqt.post_json, "/v3/trn-requests/batch", chunk)
    session.add_all([*trainees, *(request for request, _body in asks)])
    session.flush()


def copy_person(session: Session, person: dict[str, Any], now: datetime) -> None:
    """Register's copy of the person DQT created, through the edge's mapping."""
    copied = TEACHER_EDGE.translate(person)
    row = DqtTeacher.model_validate(copied).model_dump(include=set(copied))
    row.update(source_version=None, copied_at=now, source_deleted_at=None, local_edits=[])
    upsert(session, DqtTeacher, [row], TEACHER_EDGE.key_field)


def next_poll(kernel: Kernel) -> datetime | None:
    with kernel.session(writes=False) as session:
        earliest: datetime | None = session.exec(
            select(func.min(col(TrnRequest.next_poll_at))).where(TrnRequest.status == "Pending")
        ).one()
        return earliest


def wait(request: TrnRequest, now: datetime) -> None:
    """Poll again in an hour, unless that is past the four days DQT is given."""
    assert request.give_up_at is not None
    request.polls += 1
    if now + POLL_EVERY > request.give_up_at:
        request.status = "TimedOut"
        request.next_poll_at = None
    else:
        request.next_poll_at = now + POLL_EVERY


def poll(session: Session, dqt: Upstream, request: TrnRequest, now: datetime) -> bool:
    """Ask DQT how one request is going: whether the trainee has its TRN now."""
    answer = from_thread.run(dqt.get_json, "/v3/trn-requests", {"requestId": request.request_id})
    if answer.get("status") != "Completed" or not answer.get("trn"):
        wait(request, now)
        return False
    person = from_thread.run(dqt.get_json, f"/v3/persons/{answer['trn']}")
    trainee = session.get(Trainee, request.slug)
    assert trainee is not None  # the foreign key holds it
    trainee.trn = person["trn"]
    # a trainee deferred or withdrawn while waiting keeps that state: only its TRN arrives
    if trainee.state == "submitted_for_trn":
        trainee.move("receive_trn", now)
    report_status(dqt, trainee, now)
    copy_person(session, person, now)
    request.sqlmodel_update(
        {
            "status": "Completed",
            "trn": trainee.trn,
            "next_poll_at": None,
            "polls": request.polls + 1,
        }
    )
    session.add(trainee)
    return True


def retrieve_due(kernel: Kernel) -> dict[str, int]:
    """Poll every TRN request now due, each committed on its own."""
    now = kernel.clock.now()
    dqt = kernel.upstreams["dqt"]
    counts = {"polled": 0, "received": 0, "failed": 0, "timed_out": 0}
    with kernel.session() as session:
        due = session.exec(
            select(TrnRequest.request_id)
            .where(TrnRequest.status == "Pending", col(TrnRequest.next_poll_at) <= now)
            .order_by(col(TrnRequest.next_poll_at))
        ).all()
        for request_id in due:
            request = session.get(TrnRequest, request_id)
            assert request is not None
            counts["polled"] += 1
            try:
                counts["received"] += poll(session, dqt, request, now)
            except (UpstreamError, UnknownTrnError):
                # DQT could not answer: like a pending request, asked again in an hour
                session.rollback()
                request = session.get(TrnRequest, request_id)
                assert request is not None
                wait(request, now)
                counts["failed"] += 1
            counts["timed_out"] += request.status == "TimedOut"
            session.add(request)
            session.commit()
    return counts


async def retrieve_trns(kernel: Kernel) -> dict[str, int]:
    """One run of the `dqt.teacher.register` edge: each person copied is a TRN received."""
    counts: dict[str, int] = {}

    async def polls(stats: CopyStats) -> None:
        counts.update(await to_thread.run_sync(retrieve_due, kernel))
        stats.fetched = stats.upserted = counts["received"]

    await kernel.copier.driven(TEACHER_EDGE.name, polls)
    return counts


def trn_retrieval(kernel: Kernel) -> Job:
    return Job(
        "register.retrieve_trns",
        None,
        partial(retrieve_trns, kernel),
        due=partial(next_poll, kernel),
    )
