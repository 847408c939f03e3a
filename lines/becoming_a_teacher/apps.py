"""Every service of the line, each declared once: its settings, routers, tables, copies and jobs."""

from lines.becoming_a_teacher.services.apply import register_api, vendor_api
from lines.becoming_a_teacher.services.apply import routes as apply_routes
from lines.becoming_a_teacher.services.apply.models import TABLES as APPLY_TABLES
from lines.becoming_a_teacher.services.apply.models import CourseCopy as ApplyCourseCopy
from lines.becoming_a_teacher.services.apply.models import ProviderCopy as ApplyProviderCopy
from lines.becoming_a_teacher.services.apply.models import (
    SiteCopy,
    sites_in_use,
    touch_choices_of_moved_courses,
)
from lines.becoming_a_teacher.services.apply.settings import ApplySettings
from lines.becoming_a_teacher.services.claims.models import COPIES as CLAIMS_COPIES
from lines.becoming_a_teacher.services.claims.models import TABLES as CLAIMS_TABLES
from lines.becoming_a_teacher.services.claims.routes import router as claims_router
from lines.becoming_a_teacher.services.find.models import CourseCopy as FindCourseCopy
from lines.becoming_a_teacher.services.find.models import ProviderCopy as FindProviderCopy
from lines.becoming_a_teacher.services.find.routes import router as find_router
from lines.becoming_a_teacher.services.find.settings import FindSettings
from lines.becoming_a_teacher.services.manage.models import TABLES as MANAGE_TABLES
from lines.becoming_a_teacher.services.manage.models import ApplicationCopy
from lines.becoming_a_teacher.services.manage.routes import router as manage_router
from lines.becoming_a_teacher.services.placements.models import COPIES as PLACEMENTS_COPIES
from lines.becoming_a_teacher.services.placements.models import TABLES as PLACEMENTS_TABLES
from lines.becoming_a_teacher.services.placements.routes import router as placements_router
from lines.becoming_a_teacher.services.publish import public_v1
from lines.becoming_a_teacher.services.publish import routes as publish_routes
from lines.becoming_a_teacher.services.publish.models import TABLES as PUBLISH_TABLES
from lines.becoming_a_teacher.services.publish.models import GiasSchool
from lines.becoming_a_teacher.services.register import api as register_api_v
from lines.becoming_a_teacher.services.register import routes as register_routes
from lines.becoming_a_teacher.services.register.imports import apply_import, hesa_sync
from lines.becoming_a_teacher.services.register.models import TABLES as REGISTER_TABLES
from lines.becoming_a_teacher.services.register.models import (
    ApplyApplication,
    DqtTeacher,
    HesaRecord,
    School,
    Subject,
    courses_in_use,
    schools_in_use,
    subjects_in_use,
)
from lines.becoming_a_teacher.services.register.models import CourseCopy as RegisterCourseCopy
from lines.becoming_a_teacher.services.register.trn import trn_retrieval
from lines.becoming_a_teacher.stubs.dqt.models import TABLES as DQT_TABLES
from lines.becoming_a_teacher.stubs.dqt.routes import router as dqt_router
from lines.becoming_a_teacher.stubs.dqt.settings import DqtSettings
from lines.becoming_a_teacher.stubs.dqt.trn import trn_completions
from lines.becoming_a_teacher.stubs.gias.extract import daily_extract
from lines.becoming_a_teacher.stubs.gias.models import TABLES as GIAS_TABLES
from lines.becoming_a_teacher.stubs.gias.routes import router as gias_router
from lines.becoming_a_teacher.stubs.hesa.models import TABLES as HESA_TABLES
from lines.becoming_a_teacher.stubs.hesa.routes import router as hesa_router
from lines.becoming_a_teacher.systems.banner import models as banner
from lines.becoming_a_teacher.systems.banner.settings import BannerSettings
from lines.becoming_a_teacher.systems.oracle import models as oracle
from lines.becoming_a_teacher.systems.oracle.settings import OracleSettings
from lines.becoming_a_teacher.systems.record_system.app import record_system
from lines.becoming_a_teacher.systems.sits import models as sits
from lines.becoming_a_teacher.systems.sits.settings import SitsSettings
from lines.becoming_a_teacher.systems.thesis import models as thesis
from lines.becoming_a_teacher.systems.thesis.settings import ThesisSettings
from serviceline.consumer.tables import CopyTarget
from serviceline.runtime.app import ServiceApp

SERVICES = (
    ServiceApp(name="gias", routers=[gias_router], tables=GIAS_TABLES, jobs=[daily_extract]),
    ServiceApp(
        name="publish",
        routers=[publish_routes.router, public_v1.router],
        tables=PUBLISH_TABLES,
        copies={"school": CopyTarget(GiasSchool)},
        error_handlers=[public_v1.add_error_handlers],
    ),
    ServiceApp(
        name="find",
        settings=FindSettings,
        routers=[find_router],
        copies={"provider": CopyTarget(FindProviderCopy), "course": CopyTarget(FindCourseCopy)},
    ),
    ServiceApp(
        name="apply",
        settings=ApplySettings,
        routers=[apply_routes.router, vendor_api.router, register_api.router],
        tables=APPLY_TABLES,
        copies={
            "provider": CopyTarget(ApplyProviderCopy),
            "course": CopyTarget(ApplyCourseCopy, after_apply=touch_choices_of_moved_courses),
            "site": CopyTarget(SiteCopy, referenced=sites_in_use),
        },
        error_handlers=[vendor_api.add_error_handlers],
    ),
    # Manage's one write credential, for decisions sent to Apply, derives from the topology
    ServiceApp(
        name="manage",
        routers=[manage_router],
        tables=MANAGE_TABLES,
        copies={"application": CopyTarget(ApplicationCopy)},
    ),
    # Register's credentials (Apply's register API, DQT's TRN requests) and the record systems'
    # for its API derive from the topology
    ServiceApp(
        name="register",
        routers=[register_routes.router, register_api_v.router],
        tables=REGISTER_TABLES,
        copies={
            "subject": CopyTarget(Subject, referenced=subjects_in_use),
            "course": CopyTarget(RegisterCourseCopy, referenced=courses_in_use),
            "application": CopyTarget(ApplyApplication),
            "school": CopyTarget(School, referenced=schools_in_use),
            "itt_record": CopyTarget(HesaRecord),
            "teacher": CopyTarget(DqtTeacher),
        },
        jobs=[apply_import, hesa_sync, trn_retrieval],
        error_handlers=[register_api_v.add_error_handlers],
    ),
    ServiceApp(
        name="dqt",
        settings=DqtSettings,
        routers=[dqt_router],
        tables=DQT_TABLES,
        jobs=[trn_completions],
    ),
    ServiceApp(name="hesa", routers=[hesa_router], tables=HESA_TABLES),
    # DQT's teacher lookups are open reads: neither Placements nor Claims holds a credential
    ServiceApp(
        name="placements",
        routers=[placements_router],
        tables=PLACEMENTS_TABLES,
        copies=PLACEMENTS_COPIES,
    ),
    ServiceApp(name="claims", routers=[claims_router], tables=CLAIMS_TABLES, copies=CLAIMS_COPIES),
    record_system(SitsSettings, application=sits.Application, institution=sits.Institution),
    record_system(BannerSettings, application=banner.Application, institution=banner.Institution),
    record_system(OracleSettings, application=oracle.Application, institution=oracle.Institution),
    record_system(ThesisSettings, application=thesis.Application, institution=thesis.Institution),
)
