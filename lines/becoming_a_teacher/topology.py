"""The DfE "Becoming a teacher" line: its services, entities, copies, commands and checks."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from lines.becoming_a_teacher.readers import (
    APPLY_REGISTER_API,
    APPLY_VENDOR_API,
    DQT_TEACHERS,
    EDUBASE_CSV,
    HESA_COLLECTION,
    PUBLISH_V1,
    PUBLISH_V1_PROVIDER_TREE,
)
from serviceline.model.topology import (
    CommandPath,
    Edge,
    Entity,
    Kind,
    Listing,
    Lookup,
    Mechanism,
    Normal,
    Policy,
    RecordCheck,
    Relationship,
    Scope,
    Service,
    Side,
    Topology,
)

# Apply's SyncAllProvidersAndCoursesWorker: sidekiq_options retry: 3
APPLY_SYNC_RETRIES = 3
# one walk of Publish's API v1 copies providers, their courses and those courses' sites
APPLY_SYNC = "SyncAllProvidersAndCourses"


def _frozen(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(values))


def _codes(*values: str) -> frozenset[str]:
    return frozenset(values)


SERVICES = (
    Service("gias", "Get information about schools", Kind.THIRD_PARTY, 8101),
    Service("publish", "Publish teacher training courses", Kind.SERVICE, 8102),
    Service("find", "Find postgraduate teacher training", Kind.SERVICE, 8103),
    Service("apply", "Apply for teacher training", Kind.SERVICE, 8104),
    Service("manage", "Manage teacher training applications", Kind.SERVICE, 8105),
    Service("register", "Register trainee teachers", Kind.SERVICE, 8106),
    Service("dqt", "Database of Qualified Teachers", Kind.THIRD_PARTY, 8107),
    Service("hesa", "Higher Education Statistics Agency", Kind.THIRD_PARTY, 8108),
    Service("placements", "Manage school placements", Kind.SERVICE, 8109),
    Service("claims", "Claim funding for mentor training", Kind.SERVICE, 8110),
    Service("sits", "Tribal SITS", Kind.RECORD_SYSTEM, 8111),
    Service("banner", "Ellucian Banner", Kind.RECORD_SYSTEM, 8112),
    Service("oracle", "Oracle", Kind.RECORD_SYSTEM, 8113),
    Service("thesis", "Thesis Cloud", Kind.RECORD_SYSTEM, 8114),
)

RECORD_SYSTEMS = tuple(s.name for s in SERVICES if s.kind is Kind.RECORD_SYSTEM)


def record_system_for(provider_code: str) -> str:
    """The student record system a university provider runs: each runs one, and keeps it."""
    return RECORD_SYSTEMS[zlib.crc32(provider_code.encode()) % len(RECORD_SYSTEMS)]


ENTITIES = (
    Entity("school", ("gias",), "urn", "an establishment in Get information about schools"),
    Entity("provider", ("publish",), "code", "a training provider in one recruitment cycle"),
    Entity("course", ("publish",), "uuid", "a teacher training course"),
    Entity("site", ("publish",), "uuid", "a provider's location where a course runs"),
    Entity("partnership", ("publish",), "id", "accredited provider to training provider"),
    Entity("subject", ("publish",), "code", "a subject a course teaches", change_feed=False),
    Entity("candidate", ("apply",), "id", "a person applying for teacher training", True),
    Entity(
        "application", ("apply",), "id", "one application choice: a candidate and a course", True
    ),
    Entity("trainee", ("register",), "slug", "a trainee teacher, from recruitment to award", True),
    Entity(
        "teacher",
        ("dqt",),
        "trn",
        "a person with a TRN: teachers, but also trainees and others, such as widows and "
        "widowers who collect their partner's pension",
        personal=True,
    ),
    Entity("itt_record", ("hesa",), "husid", "a trainee's record in HESA's ITT collection", True),
    Entity("placement", ("placements",), "id", "a school placement offered to a provider"),
    Entity("school_partnership", ("placements",), "id", "an ITT provider working with a school"),
    Entity("mentor", ("placements", "claims"), "trn", "a school's mentor of trainees", True),
    # names its mentors by TRN, with the hours each trained
    Entity("claim", ("claims",), "id", "a school's claim for mentor training funding", True),
)

RELATIONSHIPS = (
    Relationship("accredited provider to lead partner", ("publish", "manage")),
    Relationship("course to accredited provider", ("publish",)),
    Relationship("course to school", ("publish",)),
    Relationship("ITT provider to school", ("placements",)),
    Relationship("candidate to application", ("apply",), within_entity=True),
    Relationship("course to accredited provider", ("publish",), within_entity=True),
    Relationship("course to school", ("publish",), within_entity=True),
)

SCHOOL_FROM_EDUBASE = _frozen(
    {
        "URN": "urn",
        "EstablishmentName": "name",
        "EstablishmentStatus (code)": "status_code",
        "TypeOfEstablishment (code)": "type_code",
        "EstablishmentTypeGroup (code)": "group_code",
        "PhaseOfEducation (code)": "phase_code",
        "UKPRN": "ukprn",
        "Street": "address1",
        "Town": "town",
        "Postcode": "postcode",
        "GOR (code)": "region_code",
        "StatutoryLowAge": "minimum_age",
        "StatutoryHighAge": "maximum_age",
    }
)

PROVIDER_FIELDS = _frozen(
    {
        "code": "code",
        "name": "name",
        "provider_type": "provider_type",
        "accredited_body": "accredited_body",
        "ukprn": "ukprn",
        "urn": "urn",
        "postcode": "postcode",
        "region_code": "region_code",
    }
)

COURSE_FIELDS = {
    "uuid": "uuid",
    "code": "code",
    "provider_code": "provider_code",
    "accredited_provider_code": "accredited_provider_code",
    "name": "name",
    "level": "level",
    "study_mode": "study_mode",
    "program_type": "program_type",
    "qualifications": "qualifications",
    "funding_type": "funding_type",
    "subject_codes": "subject_codes",
    "age_minimum": "age_minimum",
    "age_maximum": "age_maximum",
    "start_date": "start_date",
}

SITE_FIELDS = _frozen(
    {
        "uuid": "uuid",
        "code": "code",
        "provider_code": "provider_code",
        "name": "name",
        "street_address_1": "street_address_1",
        "city": "city",
        "postcode": "postcode",
        "urn": "urn",
    }
)

APPLICATION_FIELDS = _frozen(
    {
        "id": "id",
        "candidate_id": "candidate_id",
        "status": "status",
        "course_uuid": "course_uuid",
        "provider_code": "provider_code",
        "course_code": "course_code",
        "site_code": "site_code",
        "study_mode": "study_mode",
        "first_name": "first_name",
        "last_name": "last_name",
        "date_of_birth": "date_of_birth",
        "submitted_at": "submitted_at",
        "offer_made_at": "offer_made_at",
        "recruited_at": "recruited_at",
    }
)

REGISTER_SCHOOL_FROM_EDUBASE = _frozen(
    {
        "URN": "urn",
        "EstablishmentName": "name",
        "OpenDate": "open_date",
        "CloseDate": "close_date",
        "Town": "town",
        "Postcode": "postcode",
    }
)

MENTOR_SERVICES_SCHOOL_FROM_EDUBASE = _frozen(
    {
        "URN": "urn",
        "EstablishmentName": "name",
        "UKPRN": "ukprn",
        "Street": "address1",
        "Town": "town",
        "Postcode": "postcode",
        "TelephoneNum": "telephone",
        "SchoolWebsite": "website",
        "TypeOfEstablishment (name)": "type_of_establishment",
        "PhaseOfEducation (name)": "phase",
        "StatutoryLowAge": "minimum_age",
        "StatutoryHighAge": "maximum_age",
        "LA (name)": "local_authority_name",
        "GOR (name)": "region",
    }
)

SCHOOL_CONTACT_DETAILS = frozenset({"telephone", "website", "address1", "town", "postcode"})

OPEN_ENGLISH_SCHOOLS = Scope(
    include={"EstablishmentStatus (code)": _codes("1", "3")},
    exclude={"TypeOfEstablishment (code)": _codes("25", "30", "37")},
    description="open English schools (status 1 or 3; no offshore, Welsh or overseas schools)",
)

TEACHER_NAMES = _frozen({"trn": "trn", "firstName": "first_name", "lastName": "last_name"})

REGISTER_COURSE_FIELDS = _frozen(
    {
        "uuid": "uuid",
        "code": "code",
        "provider_code": "provider_code",
        "accredited_provider_code": "accredited_body_code",
        "name": "name",
        "level": "level",
        "study_mode": "study_mode",
        "program_type": "route",
        "qualifications": "qualifications",
        "subject_codes": "subject_codes",
        "age_minimum": "min_age",
        "age_maximum": "max_age",
        "start_date": "published_start_date",
        "state": "state",
    }
)

RECRUITED_APPLICATION_FIELDS = _frozen(
    {
        "id": "apply_id",
        "attributes.status": "status",
        "attributes.candidate.first_name": "first_name",
        "attributes.candidate.last_name": "last_name",
        "attributes.candidate.date_of_birth": "date_of_birth",
        "attributes.contact_details.email": "email",
        "attributes.course.training_provider_code": "provider_code",
        "attributes.course.course_code": "course_code",
        "attributes.course.site_code": "site_code",
        "attributes.course.study_mode": "study_mode",
        "attributes.recruited_at": "recruited_at",
    }
)

HESA_STUDENT_FIELDS = _frozen(
    {
        "F_HUSID": "hesa_id",
        "F_FNAMES": "first_names",
        "F_SURNAME": "last_name",
        "F_BIRTHDTE": "date_of_birth",
        "F_NQTEMAIL": "email",
        "F_UKPRN": "ukprn",
        "F_OWNSTU": "provider_trainee_id",
        "F_TRN": "trn",
        "F_ITTAIM": "itt_aim",
        "F_MODE": "study_mode",
        "F_ITTSTARTDATE": "itt_start_date",
        "F_SBJCA1": "course_subject_one",
        "F_STATUS": "status",
    }
)

VENDOR_APPLICATION_FIELDS = _frozen(
    {
        "id": "id",
        "attributes.status": "status",
        "attributes.candidate.first_name": "first_name",
        "attributes.candidate.last_name": "last_name",
        "attributes.candidate.date_of_birth": "date_of_birth",
        "attributes.contact_details.email": "email",
        "attributes.course.provider_code": "provider_code",
        "attributes.course.course_code": "course_code",
        "attributes.course.site_code": "site_code",
        "attributes.course.study_mode": "study_mode",
        "attributes.recruited_at": "recruited_at",
        "attributes.updated_at": "application_updated_at",
    }
)

# how often each student record system polls Apply's vendor API: each vendor chooses its own
RECORD_SYSTEM_POLLING = {
    "sits": "*/15 * * * *",
    "banner": "0 * * * *",
    "oracle": "*/30 * * * *",
    "thesis": "0 */4 * * *",
}


def _mentor_service_edges(consumer: str) -> tuple[Edge, ...]:
    """Placements and Claims are one real app: they copy the same things the same way."""
    return (
        Edge(
            "publish",
            consumer,
            "provider",
            Mechanism.SNAPSHOT,
            "15 0 * * *",
            PROVIDER_FIELDS,
            reader=PUBLISH_V1,
            keep_referenced=True,
            description="PublishTeacherTraining::Provider::SyncAllJob, daily 00:15",
        ),
        Edge(
            "publish",
            consumer,
            "subject",
            Mechanism.SNAPSHOT,
            "0 0 * * *",
            _frozen({"code": "code", "name": "name"}),
            reader=PUBLISH_V1,
            description="PublishTeacherTraining::Subject::SyncAllJob, daily 00:00",
        ),
        Edge(
            "gias",
            consumer,
            "school",
            Mechanism.SNAPSHOT,
            "30 23 * * *",
            MENTOR_SERVICES_SCHOOL_FROM_EDUBASE,
            reader=EDUBASE_CSV,
            scope=OPEN_ENGLISH_SCHOOLS,
            # a school keeps its contact details up to date here; the next import's upsert_all
            # writes every column from the CSV over them
            policy=Policy.OWNER_WINS,
            editable=SCHOOL_CONTACT_DETAILS,
            keep_referenced=True,
            source_key="URN",
            description="Gias::SyncAllSchoolsJob, daily 23:30; onboarded or partnered schools kept",
        ),
        Edge(
            "dqt",
            consumer,
            "teacher",
            Mechanism.SNAPSHOT,
            "5 0 * * *",
            TEACHER_NAMES,
            reader=DQT_TEACHERS,
            keep_referenced=True,
            description="TeachingRecord::SyncAllMentorsJob, daily 00:05: one read per mentor's "
            "TRN, 300 a minute; overwrites the mentor's names",
        ),
    )


def _record_system_edges() -> tuple[Edge, ...]:
    return tuple(
        Edge(
            "apply",
            system,
            "application",
            Mechanism.UPDATED_SINCE,
            RECORD_SYSTEM_POLLING[system],
            VENDOR_APPLICATION_FIELDS,
            reader=APPLY_VENDOR_API,
            description=f"{system} polls GET /api/v1/applications?since= for its providers",
        )
        for system in RECORD_SYSTEMS
    )


EDGES = (
    Edge(
        "gias",
        "publish",
        "school",
        Mechanism.SNAPSHOT,
        "30 2 * * *",
        SCHOOL_FROM_EDUBASE,
        reader=EDUBASE_CSV,
        scope=Scope(
            exclude={"TypeOfEstablishment (code)": _codes("25", "30", "37")},
            description="English establishments (no offshore, Welsh or overseas schools)",
        ),
        source_key="URN",
        description="GiasImportJob: yesterday's edubase CSV, daily 02:30",
    ),
    Edge(
        "publish",
        "find",
        "provider",
        Mechanism.FEED,
        "*/5 * * * *",
        PROVIDER_FIELDS,
        description="Find keeps its own search copy, following Publish's change feed",
    ),
    Edge(
        "publish",
        "find",
        "course",
        Mechanism.FEED,
        "*/5 * * * *",
        _frozen({**COURSE_FIELDS, "state": "state", "findable": "findable"}),
        description="Find keeps its own search copy, following Publish's change feed",
    ),
    Edge(
        "publish",
        "apply",
        "provider",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        PROVIDER_FIELDS,
        reader=PUBLISH_V1_PROVIDER_TREE,
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        retries=APPLY_SYNC_RETRIES,
        walk=APPLY_SYNC,
        description="SyncAllProvidersAndCoursesWorker: every 10 minutes, 2 h overlap; weekly full",
    ),
    Edge(
        "publish",
        "apply",
        "course",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        _frozen({**COURSE_FIELDS, "state": "withdrawn", "findable": "exposed_in_find"}),
        reader=PUBLISH_V1_PROVIDER_TREE,
        scope=Scope(
            exclude={"state": _codes("draft", "rolled_over")},
            description="every course but drafts and rolled-over ones, as SyncCourses skips them",
        ),
        value_maps=_frozen(
            {
                "study_mode": {"both": "full_time_or_part_time"},
                "withdrawn": {
                    "withdrawn": True,
                    "published": False,
                    "draft": False,
                    "rolled_over": False,
                },
            }
        ),
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        retries=APPLY_SYNC_RETRIES,
        walk=APPLY_SYNC,
        description="SyncCourses: each changed provider's courses; study mode both becomes "
        "full_time_or_part_time",
    ),
    Edge(
        "publish",
        "apply",
        "site",
        Mechanism.UPDATED_SINCE,
        "*/10 * * * *",
        SITE_FIELDS,
        reader=PUBLISH_V1_PROVIDER_TREE,
        overlap=timedelta(hours=2),
        full_sync_schedule="59 0 * * 6",
        retries=APPLY_SYNC_RETRIES,
        keep_referenced=True,
        walk=APPLY_SYNC,
        description="SyncSites: each synced course's locations with include=location_status; a "
        "vanished site used by an application is flagged, not deleted",
    ),
    Edge(
        "apply",
        "manage",
        "application",
        Mechanism.FEED,
        "*/5 * * * *",
        APPLICATION_FIELDS,
        description="Manage reads the applications sent to providers",
    ),
    Edge(
        "publish",
        "register",
        "subject",
        Mechanism.SNAPSHOT,
        "0 2 * * *",
        _frozen({"code": "code", "name": "name"}),
        reader=PUBLISH_V1,
        keep_referenced=True,
        description="TeacherTrainingApi::ImportSubjectsJob, daily 02:00",
    ),
    Edge(
        "publish",
        "register",
        "course",
        Mechanism.SNAPSHOT,
        "0 3 * * *",
        REGISTER_COURSE_FIELDS,
        reader=PUBLISH_V1,
        scope=Scope(
            include={"state": _codes("published", "rolled_over", "withdrawn")},
            exclude={"level": _codes("further_education")},
            description="published, rolled over or withdrawn courses; no further education",
        ),
        keep_referenced=True,
        description="TeacherTrainingApi::ImportCoursesJob, daily 03:00",
    ),
    Edge(
        "apply",
        "register",
        "application",
        Mechanism.UPDATED_SINCE,
        "0 1 * * *",
        RECRUITED_APPLICATION_FIELDS,
        reader=APPLY_REGISTER_API,
        description="RecruitsApi::ImportApplicationsJob, daily 01:00, changed_since the last "
        "sync; draft trainees follow at 04:00, university courses skipped",
    ),
    Edge(
        "gias",
        "register",
        "school",
        Mechanism.SNAPSHOT,
        "30 2 * * 0",
        REGISTER_SCHOOL_FROM_EDUBASE,
        reader=EDUBASE_CSV,
        scope=Scope(
            exclude={"TypeOfEstablishment (code)": _codes("29")},
            description="every establishment but higher education institutions (type 29)",
        ),
        keep_referenced=True,
        source_key="URN",
        description="SchoolData::ImportJob, weekly Sunday 02:30; referenced schools kept",
    ),
    Edge(
        "hesa",
        "register",
        "itt_record",
        Mechanism.UPDATED_SINCE,
        "0 8-23/2 * * *",
        HESA_STUDENT_FIELDS,
        reader=HESA_COLLECTION,
        source_key="F_HUSID",
        description="Hesa::RetrieveCollectionJob, every 2 hours 08:00-23:00",
    ),
    Edge(
        "dqt",
        "register",
        "teacher",
        Mechanism.EVENT,
        None,
        _frozen({**TEACHER_NAMES, "dateOfBirth": "date_of_birth"}),
        reader=DQT_TEACHERS,
        description="Trs::RetrieveTrnJob: after a TRN request, polls 1 minute later, then "
        "hourly for up to 4 days, and copies the TRN",
    ),
    *_mentor_service_edges("placements"),
    *_mentor_service_edges("claims"),
    *_record_system_edges(),
)

COMMANDS = (
    CommandPath(
        "manage",
        "apply",
        "vendor API v1: offer, reject, confirm-conditions-met",
        "a provider's decision, sent to the owner of the application",
    ),
    CommandPath(
        "register",
        "dqt",
        "POST /v3/trn-requests; PUT /v3/persons/{trn}/routes-to-professional-statuses/{slug}",
        "Register asks for a TRN when a trainee is submitted, then sends route status changes",
    ),
    *(
        CommandPath(
            system,
            target,
            api,
            description,
        )
        for system in RECORD_SYSTEMS
        for target, api, description in (
            (
                "apply",
                "vendor API v1: offer, reject, confirm-conditions-met",
                "the provider's decisions, made in its student record system",
            ),
            (
                "register",
                "Register API: POST /trainees, PUT, defer, withdraw, recommend-for-qts",
                "a university pushes its trainees to Register",
            ),
            (
                "hesa",
                "ITT collection: POST /apis/itt/1.1/students",
                "a university submits its trainees' records to HESA",
            ),
        )
    ),
)

MENTOR_FIELDS = _frozen({name: name for name in ("first_name", "last_name", "school_urns")})
MENTOR_SERVICES = tuple(
    Side(
        Listing(service, "/mentors", after="trn"),
        ("trn",),
        MENTOR_FIELDS,
        _frozen({"school_urns": Normal.SORTED}),
    )
    for service in ("placements", "claims")
)
# a Publish site's address field -> the GIAS school's field it was copied from
SITE_ADDRESS = _frozen({"street_address_1": "street", "city": "town", "postcode": "postcode"})

COMPARISONS = (
    RecordCheck(
        "accredited provider to lead partner",
        "partnership",
        (
            Side(
                Listing("publish", "/partnerships"),
                ("accredited_provider_code", "training_provider_code"),
            ),
            Side(
                Listing("manage", "/partnerships"),
                ("accredited_provider_code", "lead_partner_code"),
            ),
        ),
    ),
    RecordCheck("co-owned mentor", "mentor", (MENTOR_SERVICES[0], MENTOR_SERVICES[1])),
    RecordCheck(
        "trainee's TRN to DQT person",
        "teacher",
        (
            Side(
                Listing("register", "/trainees", after="slug"),
                ("trn",),
                _frozen(
                    {
                        "first_name": "first_names",
                        "last_name": "last_name",
                        "date_of_birth": "date_of_birth",
                    }
                ),
                _frozen({"first_name": Normal.FIRST_WORD}),
                where="trn",
            ),
            Side(
                Lookup("dqt", "/v3/persons/{key}"),
                fields=_frozen(
                    {
                        "first_name": "firstName",
                        "last_name": "lastName",
                        "date_of_birth": "dateOfBirth",
                    }
                ),
            ),
        ),
    ),
    # a site Publish edited, or whose school GIAS has changed since, is diverged; a site whose
    # school GIAS no longer lists is orphaned
    RecordCheck(
        "site added from a GIAS school",
        "site",
        (
            Side(
                Listing("publish", "/records/site", items="records"),
                ("urn",),
                _frozen({name: name for name in SITE_ADDRESS}),
                where="urn",
                named_by="uuid",
            ),
            Side(Listing("gias", "/records/school", items="records"), ("urn",), SITE_ADDRESS),
        ),
        copied_from="gias",
    ),
)

LINE = Topology(
    SERVICES,
    ENTITIES,
    RELATIONSHIPS,
    EDGES,
    COMMANDS,
    COMPARISONS,
    title="Becoming a teacher",
    group_titles={
        Kind.SERVICE: "Becoming a teacher services",
        Kind.RECORD_SYSTEM: "Student record systems",
    },
)
