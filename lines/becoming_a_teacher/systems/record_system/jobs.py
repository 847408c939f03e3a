"""A record system's own work: decisions sent to Apply, trainees sent to Register and HESA."""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

import httpx
from anyio import to_thread
from sqlmodel import col, func, or_, select, update

from lines.becoming_a_teacher.systems.record_system.models import (
    ApplicationRecord,
    InstitutionRecord,
)
from lines.becoming_a_teacher.systems.record_system.settings import RecordSystemSettings
from serviceline.runtime.app import JobFactory
from serviceline.runtime.deps import Kernel
from serviceline.runtime.scheduler import Job
from serviceline.runtime.upstream import Upstream

REGISTER_TRAINEES = "/api/v2026.1/trainees"
HESA_STUDENTS = "/apis/itt/1.1/students"
# what a command's success notes here, read from the owner's answer; None: not taken
Settle = Callable[["Command", httpx.Response], dict[str, Any] | None]


def settle_plain(command: Command, response: httpx.Response) -> dict[str, Any] | None:
    return command.done if response.is_success else None


def settle_trainee(command: Command, response: httpx.Response) -> dict[str, Any] | None:
    """Register's trainee id; a 409 naming this HUSID means an earlier send got through."""
    if response.is_success:
        return {**command.done, "register_trainee_id": response.json()["data"]["trainee_id"]}
    if response.status_code == httpx.codes.CONFLICT:
        ours = command.body["data"]["hesa_id"]
        for trainee in response.json().get("data", []):
            if trainee.get("hesa_id") == ours:
                return {**command.done, "register_trainee_id": trainee.get("trainee_id")}
    return None


@dataclass(frozen=True)
class Command:
    """One POST to an owner's API for one application, and what to note here once it succeeds."""

    id: str
    kind: str
    upstream: str
    path: str
    body: dict[str, Any]
    done: dict[str, Any]
    settle: Settle = settle_plain


@dataclass
class Outcome:
    """What a run did, by kind, and what failed: that is sent again at the next run."""

    done: Counter[str] = field(default_factory=Counter)
    failed: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def report(self) -> dict[str, Any]:
        return {**self.done, "failed": dict(self.failed)}


def record_settings(kernel: Kernel) -> RecordSystemSettings:
    settings = kernel.settings
    assert isinstance(settings, RecordSystemSettings)  # every record system's main gives one
    return settings


def draw(application_id: str, purpose: str) -> float:
    """A number in [0, 1) fixed by the application id: the same choice on every run and host."""
    return zlib.crc32(f"{purpose}:{application_id}".encode()) / 2**32


def decision(
    application: ApplicationRecord, settings: RecordSystemSettings, now: datetime
) -> Command:
    """The admissions tutor's decision: an offer for the knob's share, else a rejection."""
    meta = {"attribution": settings.attribution, "timestamp": now.isoformat()}
    path = f"/api/v1/applications/{application.id}"
    if draw(application.id, "offer") < settings.offer_share:
        data: dict[str, Any] = {"conditions": settings.offer_conditions}
        done = {"decision": "offer", "decided_at": now}
        body = {"data": data, "meta": meta}
        return Command(application.id, "offered", "apply", f"{path}/offer", body, done)
    reasons = settings.rejection_reasons
    reason = reasons[int(draw(application.id, "reason") * len(reasons))]
    data = {"reason": reason, "date": now.isoformat()}
    done = {"decision": "reject", "decided_at": now}
    body = {"data": data, "meta": meta}
    return Command(application.id, "rejected", "apply", f"{path}/reject", body, done)


def confirmation(
    application: ApplicationRecord, settings: RecordSystemSettings, now: datetime
) -> Command:
    meta = {"attribution": settings.attribution, "timestamp": now.isoformat()}
    path = f"/api/v1/applications/{application.id}/confirm-conditions-met"
    return Command(
        application.id, "confirmed", "apply", path, {"meta": meta}, {"conditions_met_at": now}
    )


def _undecided(model: type[ApplicationRecord]) -> tuple[Any, ...]:
    return (model.status == "awaiting_provider_decision", col(model.decided_at).is_(None))


def _accepted(model: type[ApplicationRecord]) -> tuple[Any, ...]:
    return (model.status == "pending_conditions", col(model.conditions_met_at).is_(None))


def decisions_due(
    kernel: Kernel, model: type[ApplicationRecord], settings: RecordSystemSettings, now: datetime
) -> list[Command]:
    """New applications waiting long enough, and accepted offers whose conditions are met."""
    with kernel.session(writes=False) as session:
        undecided = session.exec(
            select(model)
            .where(*_undecided(model), col(model.arrived_at) <= now - settings.decide_after)
            .order_by(col(model.arrived_at), col(model.id))
        )
        commands = [decision(application, settings, now) for application in undecided]
        accepted = session.exec(
            select(model)
            .where(
                *_accepted(model),
                col(model.application_updated_at) <= now - settings.confirm_after,
            )
            .order_by(col(model.application_updated_at), col(model.id))
        )
        return commands + [confirmation(application, settings, now) for application in accepted]


def first_decision_at(
    kernel: Kernel, model: type[ApplicationRecord], settings: RecordSystemSettings
) -> datetime | None:
    """As the records stand, the first moment `decisions_due` names anything; None if never."""
    with kernel.session(writes=False) as session:
        arrived = session.exec(select(func.min(model.arrived_at)).where(*_undecided(model))).one()
        updated = session.exec(
            select(func.min(model.application_updated_at)).where(*_accepted(model))
        ).one()
    moments = [
        *([] if arrived is None else [arrived + settings.decide_after]),
        *([] if updated is None else [updated + settings.confirm_after]),
    ]
    return min(moments, default=None)


def course_dates(year: int, study_mode: str) -> tuple[date, date]:
    """A postgraduate course of the cycle starts in September and ends a July, two if part time."""
    years = 2 if study_mode == "part_time" else 1
    return date(year, 9, 1), date(year + years, 7, 31)


def register_trainee(
    application: ApplicationRecord,
    institution: InstitutionRecord | None,
    settings: RecordSystemSettings,
) -> dict[str, Any]:
    """The trainee as the Register API v2026.1 takes it: HESA codes throughout.

    Register knows the university by its UKPRN, once it has set itself up here: the token is
    the record system's, which many universities share.
    """
    start, end = course_dates(settings.recruitment_cycle_year, application.study_mode)
    born = application.date_of_birth
    data = {
        "first_names": application.first_name,
        "last_name": application.last_name,
        "date_of_birth": born.isoformat() if born else None,
        "sex": settings.sex,
        "email": application.email,
        "nationality": settings.nationality,
        "training_route": settings.training_route,
        "itt_start_date": start.isoformat(),
        "itt_end_date": end.isoformat(),
        "trainee_start_date": start.isoformat(),
        "course_subject_1": settings.course_subject,
        "study_mode": settings.study_mode_codes.get(application.study_mode),
        "itt_aim": settings.itt_aim,
        "itt_qualification_aim": settings.itt_qualification_aim,
        "course_year": str(start.year),
        "course_age_range": settings.course_age_range,
        "fund_code": fund_code(application.study_mode),
        "funding_method": settings.funding_method,
        "hesa_id": application.husid,
        "provider_trainee_id": application.provider_trainee_id,
        "ukprn": institution.ukprn if institution else None,
        "provider_code": application.provider_code,
    }
    return {"data": data}


def hesa_student(
    application: ApplicationRecord, institution: InstitutionRecord, settings: RecordSystemSettings
) -> dict[str, Any]:
    """The trainee's `<Student>` for HESA's ITT collection, in JSON with its F_* names."""
    start, end = course_dates(settings.recruitment_cycle_year, application.study_mode)
    born = application.date_of_birth
    return {
        "F_UKPRN": institution.ukprn,
        "F_STATUS": "NEW",  # its first return to this collection
        "F_HUSID": application.husid,
        "F_OWNSTU": application.provider_trainee_id,
        "F_FNAMES": application.first_name,
        "F_SURNAME": application.last_name,
        "F_BIRTHDTE": born.isoformat() if born else None,
        "F_SEXID": settings.sex,
        "F_NATION": settings.nationality,
        "F_NQTEMAIL": application.email,
        "F_ENTRYRTE": settings.training_route,
        "F_ITTAIM": settings.itt_aim,
        "F_QLAIM": settings.itt_qualification_aim,
        "F_ITTPHSC": settings.course_age_range,
        "F_MODE": settings.study_mode_codes.get(application.study_mode),
        "F_FUNDCODE": fund_code(application.study_mode),
        "F_ITTSTARTDATE": start.isoformat(),
        "F_TRAINEESTARTDATE": start.isoformat(),
        "F_EXPECTEDENDDATE": end.isoformat(),
        "F_SBJCA1": settings.course_subject,
        "F_APPLYAPPLICATIONID": application.id,
    }


def fund_code(study_mode: str) -> str:
    """7: eligible for student finance; 2: not, as a part-time trainee is not."""
    return "2" if study_mode == "part_time" else "7"


def submissions_due(
    kernel: Kernel,
    model: type[ApplicationRecord],
    institutions: type[InstitutionRecord],
    settings: RecordSystemSettings,
    now: datetime,
    outcome: Outcome,
) -> list[Command]:
    """Recruited trainees not yet sent to Register, or to HESA, or to either."""
    with kernel.session(writes=False) as session:
        rows = session.exec(
            select(model, institutions)
            .join(
                institutions,
                col(institutions.provider_code) == col(model.provider_code),
                isouter=True,
            )
            .where(
                model.status == "recruited",
                or_(
                    col(model.submitted_to_register_at).is_(None),
                    col(model.submitted_to_hesa_at).is_(None),
                ),
            )
            .order_by(col(model.recruited_at), col(model.id))
        )
        commands = []
        for application, institution in rows:
            if application.submitted_to_register_at is None:
                commands.append(
                    Command(
                        application.id,
                        "submitted_to_register",
                        "register",
                        REGISTER_TRAINEES,
                        register_trainee(application, institution, settings),
                        {"submitted_to_register_at": now},
                        settle_trainee,
                    )
                )
            if application.submitted_to_hesa_at is not None:
                continue
            if institution is None:
                outcome.failed["hesa"][application.id] = (
                    f"provider_code: no institution {application.provider_code!r} is set up "
                    "here, so there is no UKPRN to return to HESA (POST /institutions)"
                )
                continue
            commands.append(
                Command(
                    application.id,
                    "submitted_to_hesa",
                    "hesa",
                    HESA_STUDENTS,
                    hesa_student(application, institution, settings),
                    {"submitted_to_hesa_at": now},
                )
            )
        return commands


async def send(upstream: Upstream, command: Command) -> dict[str, Any] | str:
    """The values to note once the owner took the command, or why it did not."""
    try:
        response = await upstream.client.post(command.path, json=command.body)
    except httpx.TransportError as error:
        return f"{upstream.name} unreachable: {error!r}"
    try:
        settled = command.settle(command, response)
    except (ValueError, KeyError) as error:
        return f"{upstream.name} answered {response.status_code}, unreadably: {error!r}"
    if settled is None:
        return f"{upstream.name} answered {response.status_code}: {response.text[:300]}"
    return settled


def note(kernel: Kernel, model: type[ApplicationRecord], rows: list[dict[str, Any]]) -> None:
    """Note what the owners took, one statement per kind of change, committed at once."""
    by_columns: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_columns[frozenset(row)].append(row)
    with kernel.session() as session:
        for batch in by_columns.values():
            session.exec(update(model), params=batch)
        session.commit()


async def carry_out(
    kernel: Kernel,
    model: type[ApplicationRecord],
    commands: Sequence[Command],
    outcome: Outcome,
) -> dict[str, Any]:
    """Send the commands a few at a time, noting each batch's successes before the next."""
    fan_out = record_settings(kernel).fan_out
    for start in range(0, len(commands), fan_out):
        batch = commands[start : start + fan_out]
        answers = await asyncio.gather(
            *(send(kernel.upstreams[command.upstream], command) for command in batch)
        )
        taken = []
        for command, answer in zip(batch, answers, strict=True):
            if isinstance(answer, str):
                outcome.failed[command.upstream][command.id] = answer
            else:
                outcome.done[command.kind] += 1
                taken.append({"id": command.id, **answer})
        if taken:
            await to_thread.run_sync(note, kernel, model, taken)
    return outcome.report()


async def decide(kernel: Kernel, model: type[ApplicationRecord]) -> dict[str, Any]:
    settings = record_settings(kernel)
    commands = await to_thread.run_sync(decisions_due, kernel, model, settings, kernel.clock.now())
    return await carry_out(kernel, model, commands, Outcome())


async def submit_trainees(
    kernel: Kernel, model: type[ApplicationRecord], institutions: type[InstitutionRecord]
) -> dict[str, Any]:
    settings = record_settings(kernel)
    outcome = Outcome()
    commands = await to_thread.run_sync(
        submissions_due, kernel, model, institutions, settings, kernel.clock.now(), outcome
    )
    return await carry_out(kernel, model, commands, outcome)


def decisions(model: type[ApplicationRecord]) -> JobFactory:
    """`<system>.decide`: offers, rejections and conditions met, sent to Apply's vendor API."""

    def job(kernel: Kernel) -> Job:
        settings = record_settings(kernel)
        return Job(
            f"{kernel.name}.decide",
            settings.decide_schedule,
            partial(decide, kernel, model),
            busy_from=partial(first_decision_at, kernel, model, settings),
        )

    return job


def submissions(
    model: type[ApplicationRecord], institutions: type[InstitutionRecord]
) -> JobFactory:
    """`<system>.submit_trainees`: recruited trainees sent to Register and returned to HESA."""

    def job(kernel: Kernel) -> Job:
        schedule = record_settings(kernel).submit_schedule
        run = partial(submit_trainees, kernel, model, institutions)
        return Job(f"{kernel.name}.submit_trainees", schedule, run)

    return job
