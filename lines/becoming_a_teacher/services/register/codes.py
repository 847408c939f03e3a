"""HESA code lists (Register's config/reference_data), and what Register stores for each code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypeVar

TrainingRoute = Literal[
    "assessment_only",
    "provider_led_postgrad",
    "early_years_undergrad",
    "school_direct_tuition_fee",
    "school_direct_salaried",
    "pg_teaching_apprenticeship",
    "early_years_assessment_only",
    "early_years_salaried",
    "early_years_postgrad",
    "provider_led_undergrad",
    "opt_in_undergrad",
    "hpitt_postgrad",
    "iqts",
    "teacher_degree_apprenticeship",
]
Sex = Literal["male", "female", "other", "sex_not_provided", "prefer_not_to_say"]
StudyMode = Literal["full_time", "part_time"]

TRAINING_ROUTES: Mapping[str, TrainingRoute] = {
    "16": "assessment_only",
    "12": "provider_led_postgrad",
    "18": "early_years_undergrad",
    "02": "school_direct_tuition_fee",
    "03": "school_direct_salaried",
    "10": "pg_teaching_apprenticeship",
    "17": "early_years_assessment_only",
    "20": "early_years_salaried",
    "19": "early_years_postgrad",
    "11": "provider_led_undergrad",
    "09": "opt_in_undergrad",
    "21": "hpitt_postgrad",
    "15": "iqts",
    "14": "teacher_degree_apprenticeship",
}
SEXES: Mapping[str, Sex] = {
    "11": "male",
    "10": "female",
    "12": "other",
    "99": "sex_not_provided",
    "96": "prefer_not_to_say",
}
STUDY_MODES: Mapping[str, StudyMode] = {
    "01": "full_time",
    "02": "full_time",
    "63": "full_time",
    "31": "part_time",
    "64": "part_time",
}
# the age ranges HESA has a code for
COURSE_AGE_RANGES: Mapping[str, tuple[int, int]] = {
    "13912": (3, 11),
    "13914": (5, 11),
    "13918": (11, 16),
    "13919": (11, 19),
    "13920": (0, 5),
    "13909": (3, 7),
    "13911": (3, 9),
    "13913": (5, 9),
    "13915": (7, 11),
    "13916": (7, 14),
    "13917": (9, 14),
}
# HECoS codes
COURSE_SUBJECTS: Mapping[str, str] = {
    "101117": "Ancient Hebrew",
    "100343": "applied biology",
    "101038": "applied chemistry",
    "100358": "applied computing",
    "101060": "applied physics",
    "101192": "Arabic languages",
    "100346": "biology",
    "100078": "business and management",
    "100079": "business studies",
    "100417": "chemistry",
    "100456": "child development",
    "101165": "Chinese languages",
    "101126": "classical Greek studies",
    "100300": "classical studies",
    "100366": "computer science",
    "100150": "construction and the built environment",
    "101361": "art and design",
    "100068": "dance",
    "100048": "design",
    "100069": "drama",
    "100510": "early years teaching",
    "100450": "economics",
    "101109": "English as a second or other language",
    "100320": "English studies",
    "100381": "environmental sciences",
    "101017": "food and beverage studies",
    "100321": "French language",
    "100184": "general or integrated engineering",
    "100390": "general science",
    "100409": "geography",
    "100323": "German language",
    "100061": "graphic design",
    "101373": "hair and beauty sciences",
    "100476": "health and social care",
    "100473": "health studies",
    "101410": "historical linguistics",
    "100302": "history",
    "100891": "hospitality",
    "100372": "information technology",
    "100326": "Italian language",
    "101420": "Latin language",
    "100485": "law",
    "100202": "manufacturing engineering",
    "100225": "materials science",
    "100403": "mathematics",
    "100444": "media and communication studies",
    "100329": "modern languages",
    "100642": "music education and teaching",
    "100071": "performing arts",
    "100337": "philosophy",
    "100425": "physics",
    "101142": "Portuguese language",
    "100511": "primary teaching",
    "100050": "product design",
    "100209": "production and manufacturing engineering",
    "100497": "psychology",
    "100091": "public services",
    "100893": "recreation and leisure studies",
    "100339": "religious studies",
    "100092": "retail management",
    "100330": "Russian languages",
    "100471": "social sciences",
    "100332": "Spanish language",
    "100433": "sport and exercise sciences",
    "100097": "sports management",
    "100406": "statistics",
    "100214": "textiles technology",
    "100101": "travel and tourism",
    "100610": "UK government/parliamentary studies",
    "100333": "Welsh language",
    "101169": "Japanese language",
    "100513": "teaching English as a foreign language",
}
# codes Register keeps as HESA sent them (its hesa_trainee_detail)
ITT_AIMS = frozenset({"201", "202"})
ITT_QUALIFICATION_AIMS = frozenset(
    {"001", "002", "003", "004", "007", "008", "020", "021", "028", "031", "032"}
)
FUND_CODES = frozenset({"2", "7"})
FUNDING_METHODS = frozenset({"4", "6", "7", "8", "9", "B", "C", "D", "E"})

# Publish's program type, as Register's course import turns it into a training route
PROGRAM_ROUTES: Mapping[str, TrainingRoute] = {
    "higher_education_programme": "provider_led_postgrad",
    "scitt_programme": "provider_led_postgrad",
    "school_direct_training_programme": "school_direct_tuition_fee",
    "school_direct_salaried_training_programme": "school_direct_salaried",
    "pg_teaching_apprenticeship": "pg_teaching_apprenticeship",
    "teacher_degree_apprenticeship": "teacher_degree_apprenticeship",
}
UNIVERSITY_ROUTE = "higher_education_programme"
# Publish subject names that are not, lower-cased, a HECoS subject name
PUBLISH_SUBJECTS: Mapping[str, str] = {
    "primary": "primary teaching",
    "primary with english": "primary teaching",
    "primary with geography and history": "primary teaching",
    "primary with mathematics": "primary teaching",
    "primary with modern languages": "primary teaching",
    "primary with physical education": "primary teaching",
    "primary with science": "primary teaching",
    "science": "general science",
    "citizenship": "UK government/parliamentary studies",
    "classics": "classical studies",
    "communication and media studies": "media and communication studies",
    "computing": "computer science",
    "design and technology": "design",
    "english": "English studies",
    "music": "music education and teaching",
    "physical education": "sport and exercise sciences",
    "religious education": "religious studies",
    "french": "French language",
    "german": "German language",
    "italian": "Italian language",
    "japanese": "Japanese language",
    "mandarin": "Chinese languages",
    "russian": "Russian languages",
    "spanish": "Spanish language",
    "modern languages (other)": "modern languages",
}
UNDERGRADUATE_ROUTES = frozenset(
    {
        "early_years_undergrad",
        "provider_led_undergrad",
        "opt_in_undergrad",
        "teacher_degree_apprenticeship",
    }
)
EARLY_YEARS_ROUTES = frozenset(
    {
        "early_years_undergrad",
        "early_years_assessment_only",
        "early_years_salaried",
        "early_years_postgrad",
    }
)

Value = TypeVar("Value")


def first_codes(codes: Mapping[str, Value]) -> dict[Value, str]:
    """Register's value -> the HESA code its API answers with: the first listed for it."""
    inverse: dict[Value, str] = {}
    for code, value in codes.items():
        inverse.setdefault(value, code)
    return inverse


ROUTE_CODES = first_codes(TRAINING_ROUTES)
SEX_CODES = first_codes(SEXES)
STUDY_MODE_CODES = first_codes(STUDY_MODES)
AGE_RANGE_CODES = first_codes(COURSE_AGE_RANGES)
SUBJECT_CODES = first_codes(COURSE_SUBJECTS)
_SUBJECTS_BY_NAME = {name.lower(): name for name in COURSE_SUBJECTS.values()}


def course_subject(publish_name: str) -> str | None:
    """The HECoS subject Register records for a subject Publish names, if it knows one."""
    name = publish_name.lower()
    return _SUBJECTS_BY_NAME.get(name) or PUBLISH_SUBJECTS.get(name)
