"""Realistic, deterministic seed data, written through each owner's own API."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import anyio
import httpx

from lines.becoming_a_teacher.identifiers import husid
from lines.becoming_a_teacher.topology import LINE, RECORD_SYSTEMS, record_system_for
from serviceline.model.lines import Progress, Size
from serviceline.runtime.upstream import bearer
from serviceline.stack.control import LineControl

MENTORING = ("placements", "claims")


@dataclass(frozen=True)
class Volumes:
    schools: int
    providers: int
    courses: int
    candidates: int
    teachers: int
    mentors: int


VOLUMES = {
    Size.SMALL: Volumes(
        schools=300, providers=24, courses=150, candidates=400, teachers=300, mentors=60
    ),
    Size.MEDIUM: Volumes(
        schools=3_000, providers=240, courses=3_000, candidates=8_000, teachers=3_000, mentors=600
    ),
    # the real line's scale: about 25,000 open schools, 40,000 trainees a year
    Size.LARGE: Volumes(
        schools=28_000,
        providers=2_000,
        courses=30_000,
        candidates=150_000,
        teachers=30_000,
        mentors=6_000,
    ),
}

# (town, postcode area, GIAS region, Publish region, LA code, LA name)
TOWNS = (
    ("London", "E", "H", "london", "211", "Tower Hamlets"),
    ("London", "SE", "H", "london", "210", "Southwark"),
    ("London", "N", "H", "london", "206", "Islington"),
    ("Birmingham", "B", "F", "west_midlands", "330", "Birmingham"),
    ("Coventry", "CV", "F", "west_midlands", "331", "Coventry"),
    ("Manchester", "M", "B", "north_west", "352", "Manchester"),
    ("Liverpool", "L", "B", "north_west", "341", "Liverpool"),
    ("Preston", "PR", "B", "north_west", "888", "Lancashire"),
    ("Leeds", "LS", "D", "yorkshire_and_the_humber", "383", "Leeds"),
    ("Sheffield", "S", "D", "yorkshire_and_the_humber", "373", "Sheffield"),
    ("Hull", "HU", "D", "yorkshire_and_the_humber", "810", "Kingston upon Hull"),
    ("Newcastle upon Tyne", "NE", "A", "north_east", "391", "Newcastle"),
    ("Sunderland", "SR", "A", "north_east", "394", "Sunderland"),
    ("Nottingham", "NG", "E", "east_midlands", "892", "Nottingham"),
    ("Leicester", "LE", "E", "east_midlands", "856", "Leicester"),
    ("Norwich", "NR", "G", "eastern", "926", "Norfolk"),
    ("Cambridge", "CB", "G", "eastern", "873", "Cambridgeshire"),
    ("Brighton", "BN", "J", "south_east", "846", "Brighton and Hove"),
    ("Reading", "RG", "J", "south_east", "870", "Reading"),
    ("Oxford", "OX", "J", "south_east", "931", "Oxfordshire"),
    ("Bristol", "BS", "K", "south_west", "801", "Bristol"),
    ("Plymouth", "PL", "K", "south_west", "879", "Plymouth"),
    ("Exeter", "EX", "K", "south_west", "878", "Devon"),
    ("Cardiff", "CF", "W", "wales", "681", "Cardiff"),
)
# each town's centre, so a provider's and a school's coordinates fall near where they are
TOWN_CENTRES = {
    "London": (51.5072, -0.1276),
    "Birmingham": (52.4862, -1.8904),
    "Coventry": (52.4068, -1.5197),
    "Manchester": (53.4808, -2.2426),
    "Liverpool": (53.4084, -2.9916),
    "Preston": (53.7632, -2.7031),
    "Leeds": (53.8008, -1.5491),
    "Sheffield": (53.3811, -1.4701),
    "Hull": (53.7676, -0.3274),
    "Newcastle upon Tyne": (54.9783, -1.6178),
    "Sunderland": (54.9069, -1.3838),
    "Nottingham": (52.9548, -1.1581),
    "Leicester": (52.6369, -1.1398),
    "Norwich": (52.6309, 1.2974),
    "Cambridge": (52.2053, 0.1218),
    "Brighton": (50.8225, -0.1372),
    "Reading": (51.4543, -0.9781),
    "Oxford": (51.752, -1.2577),
    "Bristol": (51.4545, -2.5879),
    "Plymouth": (50.3755, -4.1427),
    "Exeter": (50.7184, -3.5339),
    "Cardiff": (51.4816, -3.1791),
}
SAINTS = ("St Mary's", "St John's", "St Peter's", "Holy Trinity", "St Anne's", "Christ Church")
PLACES = (
    "Oakfield",
    "Riverside",
    "Hillside",
    "Meadowbank",
    "Park View",
    "Westfield",
    "Brookside",
    "Ashgrove",
    "Kingsway",
    "Elmwood",
    "Highfield",
    "Fairfield",
    "Greenway",
    "Northgate",
    "Southfield",
    "Victoria",
    "Abbey",
    "Beechwood",
    "Moorlands",
    "Castle",
)
FIRST_NAMES = (
    "Amelia",
    "Oliver",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Mia",
    "Arthur",
    "Ivy",
    "Muhammad",
    "Freya",
    "Leo",
    "Lily",
    "Oscar",
    "Grace",
    "Harry",
    "Sophia",
    "Jack",
    "Aisha",
    "Tomasz",
    "Priya",
    "Kwame",
    "Siobhan",
    "Dylan",
    "Fatima",
    "Ethan",
    "Zara",
    "Callum",
    "Niamh",
    "Yusuf",
)
LAST_NAMES = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Khan",
    "Nowak",
    "O'Brien",
    "Okafor",
    "Murphy",
    "Hughes",
    "Edwards",
    "Begum",
    "Ali",
    "Clarke",
)
# subject code, course name, level, age range, and the HECoS subject HESA records
COURSE_SUBJECTS = (
    ("00", "Primary", "primary", (5, 11), "100511"),
    ("03", "Primary with mathematics", "primary", (5, 11), "100511"),
    ("07", "Primary with science", "primary", (5, 11), "100511"),
    ("G1", "Mathematics", "secondary", (11, 16), "100403"),
    ("Q3", "English", "secondary", (11, 16), "100320"),
    ("F3", "Physics", "secondary", (11, 18), "100425"),
    ("F1", "Chemistry", "secondary", (11, 18), "100417"),
    ("C1", "Biology", "secondary", (11, 18), "100346"),
    ("11", "Computing", "secondary", (11, 16), "100366"),
    ("V1", "History", "secondary", (11, 16), "100302"),
    ("F8", "Geography", "secondary", (11, 16), "100409"),
    ("15", "French", "secondary", (11, 16), "100321"),
    ("22", "Spanish", "secondary", (11, 16), "100332"),
    ("W1", "Art and design", "secondary", (11, 16), "101361"),
    ("C6", "Physical education", "secondary", (11, 16), "100433"),
    ("V6", "Religious education", "secondary", (11, 16), "100339"),
    ("W3", "Music", "secondary", (11, 16), "100642"),
    ("DT", "Design and technology", "secondary", (11, 16), "100048"),
)
HECOS = {code: hecos for code, *_, hecos in COURSE_SUBJECTS}
UNIVERSITY_FACULTIES = ("Institute of Education", "School of Education")
SCHOOL_TYPES = (
    ("1", "4"),
    ("2", "4"),
    ("3", "4"),
    ("5", "4"),
    ("28", "10"),
    ("34", "10"),
    ("35", "11"),
    ("11", "3"),
)


def _weighted(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _postcode(rng: random.Random, area: str) -> str:
    inward = "".join(rng.choice("ABDEFGHJLNPQRSTUWXYZ") for _ in range(2))
    return f"{area}{rng.randint(1, 20)} {rng.randint(1, 9)}{inward}"


def _near(rng: random.Random, town: str) -> dict[str, float]:
    latitude, longitude = TOWN_CENTRES[town]
    return {
        "latitude": round(latitude + rng.uniform(-0.05, 0.05), 6),
        "longitude": round(longitude + rng.uniform(-0.08, 0.08), 6),
    }


def _course_terms(rng: random.Random, salaried: bool, secondary: bool) -> dict[str, Any]:
    """Fees, entry requirements and visas as providers publish them."""
    sponsors = not salaried and rng.random() < 0.4
    return {
        "course_length": _weighted(rng, [("OneYear", 0.85), ("TwoYears", 0.15)]),
        "fee_domestic": None if salaried else 9535,
        "fee_international": None if salaried else rng.choice([15_000, 17_500, 19_950, 22_000]),
        "salary_details": "Trainees are employed as unqualified teachers on the school's pay scale."
        if salaried
        else None,
        "degree_grade": _weighted(
            rng, [("two_two", 0.6), ("two_one", 0.25), ("third_class", 0.1), ("not_required", 0.05)]
        ),
        "degree_subject_requirements": "A degree with at least 50% in the subject you teach."
        if secondary and rng.random() < 0.5
        else None,
        "accept_pending_gcse": rng.random() < 0.7,
        "accept_gcse_equivalency": (equivalency := rng.random() < 0.6),
        "accept_english_gcse_equivalency": equivalency,
        "accept_maths_gcse_equivalency": equivalency,
        "accept_science_gcse_equivalency": equivalency and not secondary,
        "additional_gcse_equivalencies": "We accept equivalency tests from A Star Teachers."
        if equivalency
        else None,
        "can_sponsor_student_visa": sponsors,
        "can_sponsor_skilled_worker_visa": salaried and rng.random() < 0.2,
        "visa_sponsorship_application_deadline_at": "2027-06-30T23:59:00Z" if sponsors else None,
    }


def schools(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = []
    urns = rng.sample(range(100_000, 150_000), count)
    for urn in sorted(urns):
        town, area, gor, _, la_code, la_name = rng.choice(TOWNS)
        phase = _weighted(rng, [("2", 0.6), ("4", 0.3), ("7", 0.05), ("1", 0.05)])
        type_code, group_code = rng.choice(SCHOOL_TYPES)
        if gor == "W":
            type_code, group_code = "30", "9"
        elif rng.random() < 0.004:
            type_code, group_code = rng.choice((("25", "6"), ("37", "6")))
        status = _weighted(rng, [("1", 0.9), ("2", 0.07), ("3", 0.03)])
        suffix = {"2": "Primary School", "4": "Academy", "7": "School", "1": "Nursery School"}
        name = f"{rng.choice(PLACES + SAINTS)} {suffix[phase]}"
        ages = {"2": (4, 11), "4": (11, 18), "7": (4, 18), "1": (2, 5)}[phase]
        rows.append(
            {
                "urn": str(urn),
                "name": name,
                "status_code": status,
                "type_code": type_code,
                "group_code": group_code,
                "phase_code": phase,
                "ukprn": str(10_000_000 + urn) if rng.random() < 0.8 else None,
                "la_code": la_code,
                "la_name": la_name,
                "street": f"{rng.randint(1, 200)} {rng.choice(PLACES)} Road",
                "town": town,
                "postcode": _postcode(rng, area),
                "region_code": gor,
                "minimum_age": ages[0],
                "maximum_age": ages[1],
                "open_date": (
                    date(1950, 1, 1) + timedelta(days=rng.randint(0, 25_000))
                ).isoformat(),
                "close_date": "2025-08-31" if status == "2" else None,
                "telephone": f"0{rng.randint(1_000_000_000, 1_999_999_999)}",
                "website": f"www.{name.lower().replace(' ', '').replace(chr(39), '')}.sch.uk",
            }
        )
    return rows


# every seeded provider code starts with one of these: a story's codes led by a letter never
# meet a seeded one, so the story runs on a seeded line (`scenario run --url`)
PROVIDER_CODE_LEADS = "123456789"


def _provider_codes(rng: random.Random, count: int) -> list[str]:
    alphabet = string.ascii_uppercase + string.digits
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(rng.choice(PROVIDER_CODE_LEADS) + rng.choice(alphabet) + rng.choice(alphabet))
    return sorted(codes)


@dataclass
class PublishSeed:
    providers: list[dict[str, Any]]
    sites: dict[str, list[dict[str, Any]]]
    courses: dict[str, list[dict[str, Any]]]
    partnerships: list[dict[str, str]]


def publish(rng: random.Random, volumes: Volumes, school_rows: list[dict[str, Any]]) -> PublishSeed:
    open_english = [s for s in school_rows if s["status_code"] == "1" and s["region_code"] != "W"]
    providers = []
    for code in _provider_codes(rng, volumes.providers):
        kind = _weighted(rng, [("lead_school", 0.84), ("scitt", 0.1), ("university", 0.06)])
        town, area, _, region, _, _ = rng.choice(TOWNS[:-1])
        name = {
            "lead_school": f"{rng.choice(PLACES)} Teaching School Alliance",
            "scitt": f"{town} {rng.choice(PLACES)} SCITT",
            "university": f"University of {town} {rng.choice(UNIVERSITY_FACULTIES)}",
        }[kind]
        providers.append(
            {
                "code": code,
                "name": name,
                "provider_type": kind,
                "accredited_body": kind != "lead_school",
                "ukprn": str(rng.randint(10_000_000, 10_099_999)),
                "street_address_1": f"{rng.randint(1, 200)} {rng.choice(PLACES)} Road",
                "city": town,
                "postcode": _postcode(rng, area),
                "region_code": region,
                "email": f"itt@{code.lower()}.example.org",
                "telephone": f"0{rng.randint(1_000_000_000, 1_999_999_999)}",
                # drawn apart from the main stream, so the same seed gives the same line as before
                **_near(random.Random(code), town),
                "selectable_school": kind == "lead_school" and random.Random(code).random() < 0.3,
            }
        )
    accredited = [p["code"] for p in providers if p["accredited_body"]] or [providers[0]["code"]]
    if not any(p["accredited_body"] for p in providers):
        providers[0]["accredited_body"] = True
    partnerships = []
    partners: dict[str, list[str]] = {}
    for provider in providers:
        if provider["accredited_body"]:
            continue
        chosen = sorted(set(rng.sample(accredited, min(len(accredited), rng.randint(1, 2)))))
        partners[provider["code"]] = chosen
        partnerships += [
            {"accredited_provider_code": a, "training_provider_code": provider["code"]}
            for a in chosen
        ]
    sites: dict[str, list[dict[str, Any]]] = {}
    for provider in providers:
        picked = rng.sample(open_english, min(len(open_english), rng.randint(1, 4)))
        sites[provider["code"]] = [
            {
                "uuid": _uuid(rng),
                "code": "-" if index == 0 else string.ascii_uppercase[index - 1],
                "name": school["name"],
                "street_address_1": school["street"],
                "street_address_2": None if int(school["urn"]) % 3 else "Church Lane",
                "city": school["town"],
                "county": school["la_name"],
                "postcode": school["postcode"],
                "urn": school["urn"],
                "region_code": provider["region_code"],
                **_near(random.Random(school["urn"]), school["town"]),
            }
            for index, school in enumerate(picked)
        ]
    courses: dict[str, list[dict[str, Any]]] = {p["code"]: [] for p in providers}
    used: set[tuple[str, str]] = set()
    alphabet = string.ascii_uppercase + string.digits
    for _ in range(volumes.courses):
        provider = rng.choice(providers)
        code = ""
        while not code or (provider["code"], code) in used:
            code = "".join(rng.choice(alphabet) for _ in range(4))
        used.add((provider["code"], code))
        subject, name, level, (age_min, age_max), _ = rng.choice(COURSE_SUBJECTS)
        kind = provider["provider_type"]
        salaried = kind == "lead_school" and rng.random() < 0.25
        program = {
            "university": "higher_education_programme",
            "scitt": "scitt_programme",
            "lead_school": "school_direct_salaried_training_programme"
            if salaried
            else "school_direct_training_programme",
        }[kind]
        site_codes = [s["code"] for s in sites[provider["code"]]]
        state = _weighted(rng, [("published", 0.9), ("draft", 0.05), ("withdrawn", 0.05)])
        uuid = _uuid(rng)
        courses[provider["code"]].append(
            {
                "uuid": uuid,
                "code": code,
                "name": name,
                "accredited_provider_code": None
                if provider["accredited_body"]
                else rng.choice(partners[provider["code"]]),
                "state": state,
                "findable": state == "published",
                "study_mode": _weighted(
                    rng, [("full_time", 0.7), ("part_time", 0.1), ("both", 0.2)]
                ),
                "level": level,
                "program_type": program,
                "qualifications": ["qts"] if salaried else ["qts", "pgce"],
                "funding_type": "salary" if salaried else "fee",
                "subject_codes": [subject],
                "age_minimum": age_min,
                "age_maximum": age_max,
                "start_date": "2027-09-01",
                "site_codes": sorted(rng.sample(site_codes, rng.randint(1, len(site_codes)))),
                **_course_terms(random.Random(uuid), salaried, level == "secondary"),
            }
        )
    return PublishSeed(providers, sites, courses, partnerships)


@dataclass
class ApplySeed:
    candidates: list[dict[str, Any]]
    # per candidate, in order: the application choices (candidate_id filled in once known)
    choices: list[list[dict[str, Any]]]


def apply(rng: random.Random, volumes: Volumes, plan: PublishSeed) -> ApplySeed:
    open_courses = [
        course
        for courses in plan.courses.values()
        for course in courses
        if course["state"] == "published"
    ]
    provider_of = {c["uuid"]: code for code, courses in plan.courses.items() for c in courses}
    candidates: list[dict[str, Any]] = []
    choices: list[list[dict[str, Any]]] = []
    for _ in range(volumes.candidates):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        _, area, *_ = rng.choice(TOWNS[:-1])
        candidates.append(
            {
                "email": f"{first}.{last}.{rng.randint(1, 99_999)}@example.com".lower().replace(
                    "'", ""
                ),
                "phone_number": f"07700 {rng.randint(900_000, 900_999)}",
                "postcode": _postcode(rng, area),
                "country": "GB",
            }
        )
        born = date(1975, 1, 1) + timedelta(days=rng.randint(0, 10_000))
        picked = rng.sample(open_courses, min(len(open_courses), rng.randint(1, 3)))
        choices.append(
            [
                {
                    "id": f"{rng.getrandbits(40):010x}",
                    "course_uuid": course["uuid"],
                    "site_code": rng.choice(course["site_codes"]),
                    "study_mode": "part_time"
                    if course["study_mode"] == "part_time"
                    else rng.choice(("full_time", "full_time", "part_time"))
                    if course["study_mode"] == "both"
                    else "full_time",
                    "first_name": first,
                    "last_name": last,
                    "date_of_birth": born.isoformat(),
                    "nationality": ["GB"],
                    "personal_statement": f"I want to teach at {provider_of[course['uuid']]}.",
                }
                for course in picked
            ]
        )
    return ApplySeed(candidates, choices)


def manage_partnerships(rng: random.Random, plan: PublishSeed) -> list[dict[str, str]]:
    """Most of Publish's partnerships, as providers also record them in Manage, and a few more."""
    accredited = [p["code"] for p in plan.providers if p["accredited_body"]]
    training = [p["code"] for p in plan.providers if not p["accredited_body"]]
    pairs = {
        (p["accredited_provider_code"], p["training_provider_code"])
        for p in plan.partnerships
        if rng.random() < 0.9
    }
    for _ in range(max(1, len(plan.partnerships) // 20)):
        if accredited and training:
            pairs.add((rng.choice(accredited), rng.choice(training)))
    return [{"accredited_provider_code": a, "lead_partner_code": t} for a, t in sorted(pairs)]


def dqt_people(rng: random.Random, volumes: Volumes) -> list[dict[str, Any]]:
    """Teachers with QTS, and the others DQT holds, such as widows collecting a pension."""
    people = []
    for number in range(volumes.teachers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        born = date(1960, 1, 1) + timedelta(days=rng.randint(0, 14_000))
        teacher = number % 50 != 49
        people.append(
            {
                "trn": str(1_000_000 + number),
                "first_name": first,
                "middle_name": None,
                "last_name": last,
                "date_of_birth": born.isoformat(),
                "email": f"{first}.{last}.{number}@example.com".lower().replace("'", ""),
                "national_insurance_number": f"QQ{number % 1_000_000:06d}C",
                "status": "Active",
                "qts_date": (born + timedelta(days=365 * 23)).isoformat() if teacher else None,
                "eyts_date": None,
                "induction_status": "Passed" if teacher else "None",
                "kind": "teacher" if teacher else "other",
            }
        )
    return people


@dataclass
class MentoringSeed:
    mentors: dict[str, list[dict[str, Any]]]  # per service: Placements and Claims
    partnerships: list[dict[str, str]]
    placements: list[dict[str, Any]]
    claims: list[dict[str, Any]]


def mentoring(
    rng: random.Random,
    volumes: Volumes,
    people: list[dict[str, Any]],
    school_rows: list[dict[str, Any]],
    plan: PublishSeed,
) -> MentoringSeed:
    """Schools' mentors, placements and claims; the two services hold mentors independently."""
    schools = [
        s
        for s in school_rows
        if s["status_code"] == "1" and s["type_code"] not in ("25", "30", "37")
    ]
    teachers = [p for p in people if p["kind"] == "teacher"]
    chosen = rng.sample(teachers, min(len(teachers), volumes.mentors))
    at = {m["trn"]: rng.choice(schools)["urn"] for m in chosen}
    mentors: dict[str, list[dict[str, Any]]] = {"placements": [], "claims": []}
    for mentor in chosen:
        body = {"trn": mentor["trn"], "date_of_birth": mentor["date_of_birth"]}
        mentors["placements"].append({**body, "school_urn": at[mentor["trn"]]})
        # a school signs mentors up to each service separately, not always the same ones
        if rng.random() < 0.7:
            mentors["claims"].append({**body, "school_urn": at[mentor["trn"]]})
    accredited = [p["code"] for p in plan.providers if p["accredited_body"]]
    by_school: dict[str, list[str]] = {}
    for mentor in mentors["placements"]:
        by_school.setdefault(mentor["school_urn"], []).append(mentor["trn"])
    partnerships = []
    placements = []
    for urn, trns in sorted(by_school.items()):
        partner = rng.choice(accredited)
        partnerships.append({"school_urn": urn, "provider_code": partner})
        for _ in range(rng.randint(1, 2)):
            subject, _, level, _, _ = rng.choice(COURSE_SUBJECTS)
            placements.append(
                {
                    "school_urn": urn,
                    "subject_code": subject,
                    "provider_code": partner if rng.random() < 0.6 else None,
                    "year_group": rng.choice(("year_1", "year_3", "year_5", "mixed_year_groups"))
                    if level == "primary"
                    else None,
                    "terms": rng.sample(["autumn", "spring", "summer"], rng.randint(1, 3)),
                    "mentor_trns": [rng.choice(trns)],
                    "send_specific": rng.random() < 0.1,
                }
            )
    claims = []
    claim_mentors: dict[str, list[str]] = {}
    for mentor in mentors["claims"]:
        claim_mentors.setdefault(mentor["school_urn"], []).append(mentor["trn"])
    for urn, trns in sorted(claim_mentors.items()):
        picked = rng.sample(trns, min(len(trns), rng.randint(1, 3)))
        claims.append(
            {
                "school_urn": urn,
                "provider_code": rng.choice(accredited),
                "mentor_trainings": [
                    {
                        "mentor_trn": trn,
                        "hours_completed": rng.randint(2, 16),
                        "date_completed": (
                            date(2026, 9, 1) + timedelta(days=rng.randint(0, 30))
                        ).isoformat(),
                    }
                    for trn in picked
                ],
                **({"submitted_by": "seed@example.org"} if rng.random() < 0.6 else {}),
            }
        )
    return MentoringSeed(mentors, partnerships, placements, claims)


def hesa_returns(
    applications: list[dict[str, Any]], recruited: set[str], plan: PublishSeed
) -> list[dict[str, Any]]:
    """What the universities' record systems had returned to HESA for their recruits."""
    courses = {c["uuid"]: (code, c) for code, cs in plan.courses.items() for c in cs}
    providers = {p["code"]: p for p in plan.providers}
    returns = []
    for application in applications:
        code, course = courses[application["course_uuid"]]
        provider = providers[code]
        if application["id"] not in recruited or provider["provider_type"] != "university":
            continue
        returns.append(
            {
                "F_HUSID": husid(application["id"]),
                "F_UKPRN": provider["ukprn"],
                "F_STATUS": "NEW",
                "F_OWNSTU": f"{code}/{application['id']}",
                "F_FNAMES": application["first_name"],
                "F_SURNAME": application["last_name"],
                "F_BIRTHDTE": application["date_of_birth"],
                "F_NQTEMAIL": f"{application['id']}@students.example.ac.uk",
                "F_ITTAIM": "202",
                "F_QLAIM": "032",
                "F_MODE": "01" if application["study_mode"] == "full_time" else "31",
                "F_SEXID": "99",
                "F_NATION": "GB",
                "F_ENTRYRTE": "02",
                "F_FUNDCODE": "7",
                "F_ITTSTARTDATE": course["start_date"],
                "F_TRAINEESTARTDATE": course["start_date"],
                "F_EXPECTEDENDDATE": "2028-07-31",
                "F_APPLYAPPLICATIONID": application["id"],
                "F_SBJCA1": HECOS[course["subject_codes"][0]],
            }
        )
    return returns


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def already_seeded(clients: Mapping[str, httpx.AsyncClient], api_token: str) -> bool:
    """Whether a seed ran before: the first thing it writes is GIAS's schools."""
    response = await clients["gias"].get("/records/school", params={"limit": 1})
    response.raise_for_status()
    return bool(response.json()["records"])


async def seed_line(
    clients: dict[str, httpx.AsyncClient],
    control: LineControl,
    api_token: str,
    size: Size = Size.SMALL,
    seed: int = 1,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Seed every owner through its API, then run each copy once so the line starts in sync."""
    rng = random.Random(seed)
    volumes = VOLUMES[size]
    headers = bearer(api_token)
    report = progress or (lambda _task, _done, _total: None)
    counts: dict[str, int] = {}

    async def post(service: str, path: str, body: Any) -> Any:
        response = await clients[service].post(path, json=body, headers=headers, timeout=300)
        if response.status_code >= 400:
            raise RuntimeError(
                f"seeding {service} {path}: {response.status_code} {response.text[:500]}"
            )
        return response.json()

    async def batched(
        task: str, service: str, path: str, rows: Sequence[Any], size: int = 500
    ) -> None:
        done = 0
        for chunk in chunks(rows, size):
            await post(service, path, list(chunk))
            done += len(chunk)
            report(task, done, len(rows))
        counts[task] = len(rows)

    school_rows = schools(rng, volumes.schools)
    await batched("schools", "gias", "/schools/batch", school_rows, 1000)
    await control.run_job("gias", "gias.daily_extract")
    await control.run_edge(LINE.edge("gias.school.publish"))

    plan = publish(rng, volumes, school_rows)
    await batched("providers", "publish", "/providers/batch", plan.providers)
    for task, path, rows in (
        ("sites", "/sites/batch", plan.sites),
        ("courses", "/courses/batch", plan.courses),
    ):
        of_providers = [
            {**row, "provider_code": provider["code"]}
            for provider in plan.providers
            for row in rows[provider["code"]]
        ]
        await batched(task, "publish", path, of_providers, 1000)
    for partnership in plan.partnerships:
        await post("publish", "/partnerships", partnership)
    counts["partnerships"] = len(plan.partnerships)
    report("partnerships", len(plan.partnerships), len(plan.partnerships))
    # Manage records the same relationships on its own, and not quite the same ones
    for partnership in manage_partnerships(rng, plan):
        await post("manage", "/partnerships", partnership)
    await control.sync([e for e in LINE.copy_order() if e.consumer in ("apply", "find")])

    people = apply(rng, volumes, plan)
    applications: list[dict[str, Any]] = []
    done = 0
    for batch in chunks(range(len(people.candidates)), 500):
        created = await post("apply", "/candidates/batch", [people.candidates[i] for i in batch])
        for index, candidate in zip(batch, created, strict=True):
            for choice in people.choices[index]:
                applications.append({**choice, "candidate_id": candidate["id"]})
        done += len(batch)
        report("candidates", done, len(people.candidates))
    counts["candidates"] = len(people.candidates)
    decisions = decide(rng, applications)
    await batched("applications", "apply", "/applications/batch", applications)
    await control.run_edge(LINE.edge("apply.application.manage"))
    await _command(decisions.commands, post, report)
    counts["recruited"] = len(decisions.recruited)
    await control.run_edge(LINE.edge("apply.application.manage"))

    await control.sync([e for e in LINE.copy_order() if e.consumer == "register"])
    await control.run_job("register", "register.create_trainees_from_apply")
    counts["trainees"] = await _submit_for_trn(rng, clients["register"], headers, post, report)
    census = hesa_returns(applications, decisions.recruited, plan)
    await batched("HESA returns", "hesa", "/apis/itt/1.1/students/batch", census)
    for system in (name for name in RECORD_SYSTEMS if name in clients):
        universities = [
            {"provider_code": p["code"], "ukprn": p["ukprn"], "name": p["name"]}
            for p in plan.providers
            if p["provider_type"] == "university" and record_system_for(p["code"]) == system
        ]
        await post(system, "/institutions/batch", universities)
    await control.sync([e for e in LINE.copy_order() if e.consumer in RECORD_SYSTEMS])

    persons = dqt_people(rng, volumes)
    await batched("teachers", "dqt", "/v3/teachers/batch", persons, 1000)
    await control.sync(
        [e for e in LINE.copy_order() if e.consumer in MENTORING and e.owner != "dqt"]
    )
    plan_m = mentoring(rng, volumes, persons, school_rows, plan)
    for service in MENTORING:
        await batched(f"{service} mentors", service, "/mentors/batch", plan_m.mentors[service], 200)
    await batched("school partnerships", "placements", "/partnerships/batch", plan_m.partnerships)
    await batched("placements", "placements", "/placements/batch", plan_m.placements)
    await batched("claims", "claims", "/claims/batch", plan_m.claims, 200)
    await control.sync(
        [e for e in LINE.copy_order() if e.consumer in MENTORING and e.owner == "dqt"]
    )
    return counts


async def _submit_for_trn(
    rng: random.Random,
    register: httpx.AsyncClient,
    headers: dict[str, str],
    post: Callable[[str, str, Any], Awaitable[Any]],
    report: Progress,
) -> int:
    """Providers submit most of their new trainees for a TRN, a batch at a time; DQT answers in
    its own time."""
    slugs: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"state": "draft", "limit": 1000}
        if after is not None:
            params["after"] = after
        page = (await register.get("/trainees", params=params, headers=headers)).json()
        if not page:
            break
        slugs += [trainee["slug"] for trainee in page]
        after = page[-1]["slug"]
    chosen = [slug for slug in slugs if rng.random() < 0.6]
    done = 0
    for batch in chunks(chosen, 500):
        await post("register", "/trainees/submit-for-trn/batch", list(batch))
        done += len(batch)
        report("TRN requests", done, len(chosen))
    return len(slugs)


OFFER_CONDITIONS = ["Fitness to train to teach check", "DBS check"]
REJECTION = "Not enough subject knowledge."
SEED_USER = {"full_name": "Seed Provider User", "email": "decisions@example.org", "user_id": "1"}
# decisions made through Manage's commands to Apply; the rest arrive with their history
COMMANDED = 200


@dataclass
class Decisions:
    commands: list[list[tuple[str, str, Any]]]
    recruited: set[str]


def decide(rng: random.Random, applications: list[dict[str, Any]]) -> Decisions:
    """What providers decided and candidates answered, about one in seven ending recruited.

    Most applications carry their history into Apply's batch API, replayed there through the
    real state machine; the first few hundred are decided live, through Manage, to Apply.
    """
    commands: list[list[tuple[str, str, Any]]] = []
    recruited: set[str] = set()
    for application in applications:
        roll = rng.random()
        if roll < 0.1:
            events = ["reject"]
        elif roll < 0.45:
            events = ["make_offer"]
            if rng.random() < 0.7:
                events.append("accept")
                if rng.random() < 0.55:
                    events.append("confirm_conditions_met")
                    recruited.add(application["id"])
        else:
            continue
        if len(commands) < COMMANDED:
            commands.append(_as_commands(application["id"], events))
        else:
            application["history"] = events
            application["offer_conditions"] = OFFER_CONDITIONS if "make_offer" in events else []
            application["rejection_reason"] = REJECTION if events == ["reject"] else None
    return Decisions(commands, recruited)


def _as_commands(application_id: str, events: list[str]) -> list[tuple[str, str, Any]]:
    path = f"/applications/{application_id}"
    steps = {
        "reject": ("manage", f"{path}/reject", {"reason": REJECTION, "user": SEED_USER}),
        "make_offer": (
            "manage",
            f"{path}/offer",
            {"conditions": OFFER_CONDITIONS, "user": SEED_USER},
        ),
        "accept": ("apply", f"{path}/accept-offer", {}),
        "confirm_conditions_met": (
            "manage",
            f"{path}/confirm-conditions-met",
            {"user": SEED_USER},
        ),
    }
    return [steps[event] for event in events]


async def _command(
    plans: list[list[tuple[str, str, Any]]],
    post: Callable[[str, str, Any], Awaitable[Any]],
    report: Progress,
) -> None:
    done = 0
    for batch in chunks(plans, 16):
        async with anyio.create_task_group() as group:
            for steps in batch:
                group.start_soon(_steps, steps, post)
        done += len(batch)
        report("decisions", done, len(plans))


async def _steps(
    steps: list[tuple[str, str, Any]], post: Callable[[str, str, Any], Awaitable[Any]]
) -> None:
    for service, path, body in steps:
        await post(service, path, body)
