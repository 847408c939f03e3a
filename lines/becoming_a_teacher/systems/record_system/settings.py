"""The behaviour every student record system has, each tuned by its own knobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import Field

from serviceline.runtime.settings import ServiceSettings

Share = Annotated[float, Field(ge=0, le=1)]


class RecordSystemSettings(ServiceSettings):
    """A university's admissions office as its record system runs it."""

    # the service name in the topology: its integration user derives from it (and, in the
    # kernel, its credentials)
    system: ClassVar[str]
    # the name decisions are attributed to in Apply (the vendor API's meta)
    office: str = "Admissions integration"
    decide_schedule: str = "5 * * * *"
    # how long after an application reaches this system the admissions tutor decides
    decide_after: timedelta = timedelta(days=2)
    # of the applications decided, the share given an offer (the rest are rejected)
    offer_share: Share = 0.7
    # an offer without conditions recruits the candidate as soon as they accept it
    offer_conditions: list[str] = Field(default_factory=lambda: ["Enhanced DBS check"])
    rejection_reasons: list[str] = Field(
        default_factory=lambda: ["The course is full.", "Subject knowledge not sufficient."],
        min_length=1,
    )
    # how long after the candidate accepts the conditions are confirmed as met
    confirm_after: timedelta = timedelta(days=14)
    submit_schedule: str = "0 18 * * 5"
    # how far the record system talks to Apply, Register and HESA at once
    fan_out: Annotated[int, Field(ge=1, le=64)] = 8
    # the trainee record as the enrolment team codes it, HESA codes throughout
    student_id_prefix: ClassVar[str] = ""
    study_mode_codes: dict[str, str] = Field(
        default_factory=lambda: {"full_time": "01", "part_time": "31"}
    )
    training_route: str = "12"  # provider_led_postgrad: a university's fee-funded PGCE
    itt_aim: str = "202"  # both professional status and academic award
    itt_qualification_aim: str = "020"  # Postgraduate Certificate in Education
    # HECoS, one for every programme: the copy of Apply's application names no subject
    course_subject: str = "100390"  # general science
    course_age_range: str = "13918"  # 11 to 16
    funding_method: str = "6"  # no bursary, scholarship or grant awarded
    sex: str = "99"  # not provided: Apply shares no sex with the provider's system
    nationality: str = "GB"

    @property
    def attribution(self) -> dict[str, str]:
        """The integration user a decision is attributed to in Apply."""
        return {
            "full_name": self.office,
            "email": f"admissions.{self.system}@example.ac.uk",
            "user_id": f"{self.system}-integration",
        }
