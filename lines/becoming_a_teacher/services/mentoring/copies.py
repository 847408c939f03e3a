"""The copies both mentor services keep, wired alike: schools, providers, subjects, teachers."""

from __future__ import annotations

from lines.becoming_a_teacher.services.mentoring.dqt import held_trns, mentor_trns, overwrite_names
from lines.becoming_a_teacher.services.mentoring.funding import assign_funding_regions
from lines.becoming_a_teacher.services.mentoring.models import (
    MentorBase,
    SchoolCopyBase,
    TeacherCopyBase,
)
from lines.becoming_a_teacher.services.publish.copies import ProviderCopyBase, SubjectCopyBase
from serviceline.consumer.tables import CopyTarget, ReferencedKeys


def copy_targets(
    *,
    school: type[SchoolCopyBase],
    provider: type[ProviderCopyBase],
    subject: type[SubjectCopyBase],
    teacher: type[TeacherCopyBase],
    mentor: type[MentorBase],
    schools_in_use: ReferencedKeys,
    providers_in_use: ReferencedKeys,
) -> dict[str, CopyTarget]:
    return {
        "school": CopyTarget(
            school, referenced=schools_in_use, after_apply=assign_funding_regions(school)
        ),
        "provider": CopyTarget(provider, referenced=providers_in_use),
        "subject": CopyTarget(subject),
        "teacher": CopyTarget(
            teacher,
            referenced=held_trns(mentor),
            wanted=mentor_trns(mentor),
            after_apply=overwrite_names(mentor),
        ),
    }
