"""Every operation of each real service's spec: served by the line's service, or left out on
purpose with why; and what the service serves under the spec's prefix beyond it, with why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from serviceline.testing import service_app, service_settings
from tests import spec_schemas

Operation = tuple[str, str]  # (METHOD, the spec's path)

SRS_VERSION_ONLY = "a later vendor API version's; record systems here speak v1.0"


@dataclass(frozen=True)
class RealSpec:
    spec: str
    service: str
    # the service's paths that the spec's API covers
    namespace: str
    served: dict[Operation, str]
    left_out: dict[Operation, str] = field(default_factory=dict)
    # served in the namespace though the spec does not document it
    beyond: dict[Operation, str] = field(default_factory=dict)
    # where the spec's paths are mounted, and what its path variables are here
    prefix: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    def mounted(self, operations: Iterable[Operation]) -> set[Operation]:
        found = set()
        for method, path in operations:
            for name, value in self.variables.items():
                path = path.replace(f"{{{name}}}", value)
            found.add((method, self.prefix + path))
        return found


PUBLISH_V1 = "/recruitment_cycles/{year}"
APPLICATION = "/applications/{application_id}"
TRAINEE = "/api/{api_version}/trainees/{trainee_id}"
DEGREES = "Register's degrees are not modelled: no copy in the line reads them"
PLACEMENTS = "Register's placements are not modelled here; Manage school placements owns them"

SPECS = [
    RealSpec(
        "publish-public-v1.json",
        "publish",
        "/api/public/v1",
        prefix="/api/public/v1",
        served={
            ("GET", f"{PUBLISH_V1}/providers"): "Apply's sync lists changed providers",
            ("GET", f"{PUBLISH_V1}/providers/{{provider_code}}"): "one provider",
            ("GET", f"{PUBLISH_V1}/providers/{{provider_code}}/locations"): "a provider's sites",
            ("GET", f"{PUBLISH_V1}/courses"): "Register, Placements and Claims list the cycle",
            ("GET", f"{PUBLISH_V1}/providers/{{provider_code}}/courses"): "SyncCourses",
            ("GET", f"{PUBLISH_V1}/providers/{{provider_code}}/courses/{{course_code}}"): "one",
            (
                "GET",
                f"{PUBLISH_V1}/providers/{{provider_code}}/courses/{{course_code}}/locations",
            ): "SyncSites, with include=location_status",
            ("GET", "/subjects"): "Register's and Placements' subject lists",
            ("GET", "/subject_areas"): "the subjects grouped as Find shows them",
            ("GET", "/provider_suggestions"): "providers by name as one types",
        },
    ),
    RealSpec(
        "apply-vendor-api-v1.0.yml",
        "apply",
        "/api/v1",
        prefix="/api/v1",
        served={
            ("GET", "/applications"): "a record system's poll, `since` its last one",
            ("GET", APPLICATION): "one application, re-read before a decision",
            ("POST", f"{APPLICATION}/offer"): "an offer, conditional or not",
            ("POST", f"{APPLICATION}/reject"): "a rejection, or an offer withdrawn",
            ("POST", f"{APPLICATION}/confirm-conditions-met"): "the candidate recruited",
            ("POST", f"{APPLICATION}/conditions-not-met"): "the offer's conditions unmet",
            ("POST", f"{APPLICATION}/confirm-enrolment"): "deprecated: a no-op",
            ("GET", "/reference-data/gcse-subjects"): "what record systems map GCSEs by",
            ("GET", "/reference-data/gcse-grades"): "as above",
            ("GET", "/reference-data/a-and-as-level-subjects"): "as above",
            ("GET", "/reference-data/a-and-as-level-grades"): "as above",
            ("POST", "/test-data/regenerate"): "deprecated: answers that it generates nothing",
        },
    ),
    RealSpec(
        "apply-register-api-v1-2021.yml",
        "apply",
        "/register-api",
        prefix="/register-api",
        served={("GET", "/applications"): "Register's nightly import of recruited applications"},
    ),
    RealSpec(
        "register-api-v2026.1.yaml",
        "register",
        "/api/v2026.1",
        {
            ("GET", "/api/{api_version}/info"): "a record system checks the version it speaks",
            ("GET", "/api/{api_version}/trainees"): "a record system lists its trainees",
            ("POST", "/api/{api_version}/trainees"): "a record system pushes a new trainee",
            ("GET", TRAINEE): "one trainee",
            ("PUT", TRAINEE): "a record system's update of its trainee",
            ("POST", f"{TRAINEE}/defer"): "a deferral",
            ("POST", f"{TRAINEE}/recommend-for-qts"): "the recommendation for QTS in summer",
            ("POST", f"{TRAINEE}/withdraw"): "a withdrawal",
        },
        {
            ("GET", "/api/{api_version}/reference-data"): "no record system here maps codes by it",
            ("GET", f"{TRAINEE}/degrees"): DEGREES,
            ("POST", f"{TRAINEE}/degrees"): DEGREES,
            ("GET", f"{TRAINEE}/degrees/{{degree_id}}"): DEGREES,
            ("PUT", f"{TRAINEE}/degrees/{{degree_id}}"): DEGREES,
            ("DELETE", f"{TRAINEE}/degrees/{{degree_id}}"): DEGREES,
            ("GET", f"{TRAINEE}/placements"): PLACEMENTS,
            ("POST", f"{TRAINEE}/placements"): PLACEMENTS,
            ("GET", f"{TRAINEE}/placements/{{placement_id}}"): PLACEMENTS,
            ("PUT", f"{TRAINEE}/placements/{{placement_id}}"): PLACEMENTS,
            ("DELETE", f"{TRAINEE}/placements/{{placement_id}}"): PLACEMENTS,
            (
                "POST",
                f"{TRAINEE}/update-qts-or-eyts-status",
            ): "QTS is awarded through DQT's route status here, as Register sends it",
        },
        variables={"api_version": "v2026.1"},
    ),
    RealSpec(
        "dqt-api-v3-2023-05.json",
        "dqt",
        "/v3",
        {
            ("GET", "/v3/teachers/{trn}"): "Placements' and Claims' mentors' names, by TRN",
            ("POST", "/v3/teachers/name-changes"): "a teacher's change of name",
        },
        {
            ("GET", "/v3/teacher"): "the signed-in teacher's own record: no one signs in here",
            ("GET", "/v3/certificates/qts"): "certificates are no copy's concern",
            ("GET", "/v3/certificates/eyts"): "as above",
            ("GET", "/v3/certificates/induction"): "as above",
            ("GET", "/v3/certificates/npq/{qualificationId}"): "as above",
            (
                "POST",
                "/v3/teachers/date-of-birth-changes",
            ): "no copy in the line reads dates of birth",
        },
        {
            ("GET", "/v3/persons/{trn}"): "the TRS API that replaced it after May 2023",
            ("POST", "/v3/persons/find"): "TRS's find by TRN and date of birth, a mentor batch",
            ("POST", "/v3/teachers/batch"): "the seed's bulk write, not a real operation",
            ("POST", "/v3/trn-requests"): "TRS's TRN request, as Register sends it today",
            ("POST", "/v3/trn-requests/batch"): "the seed's TRN requests at once, not a real one",
            ("GET", "/v3/trn-requests"): "TRS's TRN request status, as Register polls it",
            (
                "PUT",
                "/v3/persons/{trn}/routes-to-professional-statuses/{reference}",
            ): "TRS's route status, as Register sends it",
        },
    ),
]
# the specs of APIs the line serves only in a newer version: (service, namespace, why)
SUPERSEDED = {
    "dqt-api-v2-2023-05.json": ("dqt", "/v2", "Register requests TRNs through TRS's v3 API today"),
    "register-api-v0.1.yaml": ("register", "/api/v0.1", "record systems speak v2026.1"),
}


def routes(service: str, state_dir: Path, namespace: str) -> set[Operation]:
    """What the service's own OpenAPI says it serves in the namespace."""
    app = service_app(service, service_settings(service, state_dir))
    return {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith(f"{namespace}/")
        for method in item
    }


@pytest.mark.parametrize("real", SPECS, ids=lambda real: real.spec)
def test_every_operation_is_served_or_left_out_on_purpose(real: RealSpec, state_dir: Path) -> None:
    assert real.served.keys() | real.left_out.keys() == spec_schemas.operations(real.spec)
    assert not real.served.keys() & real.left_out.keys()
    ours = routes(real.service, state_dir, real.namespace)
    assert ours == real.mounted(real.served) | real.mounted(real.beyond)
    assert not real.mounted(real.left_out) & ours


@pytest.mark.parametrize("spec", sorted(SUPERSEDED))
def test_a_superseded_spec_is_served_by_none_of_its_operations(spec: str, state_dir: Path) -> None:
    service, namespace, _why = SUPERSEDED[spec]
    assert spec_schemas.operations(spec)
    assert not routes(service, state_dir, namespace)
