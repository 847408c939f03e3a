"""DQT in the mentor services: a new mentor's TRN and birth date checked, names renamed nightly."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from fastapi import status
from sqlmodel import Session, col, select

from lines.becoming_a_teacher.services.mentoring.models import MentorBase, MentorCreate, used_in
from serviceline.consumer.tables import AfterApply, Copy, ReferencedKeys, WantedKeys
from serviceline.runtime.upstream import Upstream, UpstreamError

# persons asked for in one request to TRS's find: DQT's stub answers up to 500
FIND_PERSONS_LIMIT = 500


async def teacher_names(
    dqt: Upstream, mentors: Sequence[MentorCreate]
) -> list[tuple[str, str] | None]:
    """The names DQT holds for each mentor's TRN, if the date of birth is theirs (MentorBuilder's
    check), or None: one request to TRS's find for each 500 mentors."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for start in range(0, len(mentors), FIND_PERSONS_LIMIT):
        chunk = mentors[start : start + FIND_PERSONS_LIMIT]
        persons = [{"trn": m.trn, "dateOfBirth": m.date_of_birth.isoformat()} for m in chunk]
        answer = await dqt.post_json("/v3/persons/find", {"persons": persons})
        for person in answer["results"]:
            names = (str(person["firstName"]), str(person["lastName"]))
            found[str(person["trn"]), str(person["dateOfBirth"])] = names
    return [found.get((m.trn, m.date_of_birth.isoformat())) for m in mentors]


async def not_found(dqt: Upstream, mentor: MentorCreate) -> str:
    """Why DQT found no one: the find leaves both mistakes out, asking by TRN alone tells which."""
    try:
        await dqt.get(f"/v3/teachers/{mentor.trn}")
    except UpstreamError as error:
        if error.status == status.HTTP_404_NOT_FOUND:
            return f"trn: DQT has no teacher with TRN {mentor.trn}"
        raise
    return f"date_of_birth: is not the date of birth DQT holds for TRN {mentor.trn}"


def mentor_trns(model: type[MentorBase]) -> WantedKeys:
    """TeachingRecord::SyncAllMentorsJob reads one TRN for every mentor the service holds."""

    def wanted(session: Session) -> list[str]:
        return list(session.exec(select(col(model.trn)).order_by(col(model.trn))))

    return wanted


def overwrite_names(model: type[MentorBase]) -> AfterApply:
    """SyncMentorJob's `mentor.update!`, through the ORM: each renamed mentor reaches the feed."""

    def rename(session: Session, rows: list[dict[str, Any]], _: Mapping[str, Copy]) -> None:
        names = {row["trn"]: (row["first_name"], row["last_name"]) for row in rows}
        for mentor in session.exec(select(model).where(col(model.trn).in_(list(names)))):
            first_name, last_name = names[mentor.trn]
            if (mentor.first_name, mentor.last_name) != (first_name, last_name):
                mentor.first_name, mentor.last_name = first_name, last_name
                session.add(mentor)
        session.flush()

    return rename


def held_trns(model: type[MentorBase]) -> ReferencedKeys:
    """A teacher DQT no longer answers for is kept while one of the service's mentors holds it."""

    def held(session: Session, trns: Collection[str]) -> set[str]:
        return used_in(session, trns, model.trn)

    return held
