"""DQT in the mentor services: a new mentor's TRN and birth date checked, names renamed nightly."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from fastapi import HTTPException, status
from sqlmodel import Session, col, select

from serviceline.copier import AfterApply, Copy, ReferencedKeys, WantedKeys
from serviceline.upstream import Upstream, UpstreamError
from services.mentoring.models import MentorBase, MentorCreate, used_in


async def teacher_names(dqt: Upstream, mentor: MentorCreate, at: str = "") -> tuple[str, str]:
    """The names DQT holds for the TRN, if the date of birth is theirs (MentorBuilder's check)."""
    try:
        teacher = await dqt.get_json(
            f"/v3/teachers/{mentor.trn}", {"dateOfBirth": mentor.date_of_birth.isoformat()}
        )
    except UpstreamError as error:
        if error.status != status.HTTP_404_NOT_FOUND:
            raise
        # DQT answers 404 to both mistakes; asking without the date tells the user which it was
        if await _known(dqt, mentor.trn):
            detail = f"date_of_birth: is not the date of birth DQT holds for TRN {mentor.trn}"
        else:
            detail = f"trn: DQT has no teacher with TRN {mentor.trn}"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, at + detail) from error
    return str(teacher["firstName"]), str(teacher["lastName"])


async def _known(dqt: Upstream, trn: str) -> bool:
    try:
        await dqt.get(f"/v3/teachers/{trn}")
    except UpstreamError as error:
        if error.status == status.HTTP_404_NOT_FOUND:
            return False
        raise
    return True


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
