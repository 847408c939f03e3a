"""Every service of the line, each declared once: its settings, routers, tables, copies and jobs."""

from serviceline.consumer.tables import CopyTarget
from serviceline.runtime.app import ServiceApp
from services.apply import register_api, vendor_api
from services.apply import routes as apply_routes
from services.apply.models import TABLES as APPLY_TABLES
from services.apply.models import CourseCopy as ApplyCourseCopy
from services.apply.models import ProviderCopy as ApplyProviderCopy
from services.apply.models import SiteCopy, sites_in_use, touch_choices_of_moved_courses
from services.apply.settings import ApplySettings
from services.claims.models import COPIES as CLAIMS_COPIES
from services.claims.models import TABLES as CLAIMS_TABLES
from services.claims.routes import router as claims_router
from services.find.models import CourseCopy as FindCourseCopy
from services.find.models import ProviderCopy as FindProviderCopy
from services.find.routes import router as find_router
from services.find.settings import FindSettings
from services.manage.models import TABLES as MANAGE_TABLES
from services.manage.models import ApplicationCopy
from services.manage.routes import router as manage_router
from services.placements.models import COPIES as PLACEMENTS_COPIES
from services.placements.models import TABLES as PLACEMENTS_TABLES
from services.placements.routes import router as placements_router
from services.publish import public_v1
from services.publish import routes as publish_routes
from services.publish.models import TABLES as PUBLISH_TABLES
from services.publish.models import GiasSchool
from services.register import api as register_api_v
from services.register import routes as register_routes
from services.register.imports import apply_import, hesa_sync
from services.register.models import TABLES as REGISTER_TABLES
from services.register.models import (
    ApplyApplication,
    DqtTeacher,
    HesaRecord,
    School,
    Subject,
    courses_in_use,
    schools_in_use,
    subjects_in_use,
)
from services.register.models import CourseCopy as RegisterCourseCopy
from services.register.trn import trn_retrieval
from stubs.dqt.models import TABLES as DQT_TABLES
from stubs.dqt.routes import router as dqt_router
from stubs.dqt.settings import DqtSettings
from stubs.dqt.trn import trn_completions
from stubs.gias.extract import daily_extract
from stubs.gias.models import TABLES as GIAS_TABLES
from stubs.gias.routes import router as gias_router
from stubs.hesa.models import TABLES as HESA_TABLES
from stubs.hesa.routes import router as hesa_router
from systems.banner import models as banner
from systems.banner.settings import BannerSettings
from systems.oracle import models as oracle
from systems.oracle.settings import OracleSettings
from systems.record_system.app import record_system
from systems.sits import models as sits
from systems.sits.settings import SitsSettings
from systems.thesis import models as thesis
from systems.thesis.settings import ThesisSettings

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
