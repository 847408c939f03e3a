"""Every route of every service by every credential the line issues: exactly the intended cells
are let in. A route missing from the decision table fails the test until someone decides."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from lines.becoming_a_teacher.topology import LINE, RECORD_SYSTEMS
from serviceline.model.credentials import clients_of, credential
from serviceline.testing import ADMIN_TOKEN, API_TOKEN, AUDITOR_TOKEN, in_process_line

pytestmark = pytest.mark.anyio

# every credential the line issues, and two it does not
ISSUED = {
    "none": None,
    "wrong": "guessed-token",
    "admin": ADMIN_TOKEN,
    "operator": API_TOKEN,
    "auditor": AUDITOR_TOKEN,
    **{
        f"{holder}@{target.name}": credential(holder, target.name)
        for target in LINE.services
        for holder in clients_of(LINE, target.name)
    },
}
EVERYONE = frozenset(ISSUED)
OWN = frozenset({"operator", "auditor"})  # a read of the service's own API
OWN_WRITE = frozenset({"operator"})
NOBODY: frozenset[str] = frozenset()
ADMIN_READ = frozenset({"admin", "auditor"})
ADMIN_WRITE = frozenset({"admin"})
# the record systems' tokens for each service they command
SYSTEMS_TO = {
    t: frozenset(f"{s}@{t}" for s in RECORD_SYSTEMS) for t in ("apply", "register", "hesa")
}

# the kernel's routes on every service: (method, path) -> who, for a route whose answer
# carries no personal data; /records, /feed, /copies and /checksums are decided per entity below
KERNEL = {
    ("GET", "/openapi.json"): EVERYONE,
    ("HEAD", "/openapi.json"): EVERYONE,
    ("GET", "/docs"): EVERYONE,
    ("GET", "/health"): EVERYONE,
    # counts by edge, entity and route template, as Prometheus scrapes them: no record in them
    ("GET", "/metrics"): EVERYONE,
    ("GET", "/admin/clock"): ADMIN_READ,
    ("POST", "/admin/clock/advance"): ADMIN_WRITE,
    ("GET", "/admin/jobs"): ADMIN_READ,
    ("POST", "/admin/jobs/{name}/run"): ADMIN_WRITE,
    ("GET", "/admin/edges"): ADMIN_READ,
    ("POST", "/admin/edges/{owner}/{entity}/run"): ADMIN_WRITE,
    ("POST", "/admin/feed/prune"): ADMIN_WRITE,
    # keys, versions and times only: no record's body
    ("GET", "/admin/changelog"): ADMIN_READ,
    ("GET", "/admin/applied"): ADMIN_READ,
    ("GET", "/admin/copy-runs"): ADMIN_READ,
    ("GET", "/admin/faults"): ADMIN_READ,
    ("GET", "/admin/faults/windows"): ADMIN_READ,
    ("GET", "/admin/local-edits"): ADMIN_READ,
    ("POST", "/admin/faults"): ADMIN_WRITE,
    ("DELETE", "/admin/faults"): ADMIN_WRITE,
}

# public reference data, as the real Publish API and GIAS publish it: open to anyone
OPEN_ENTITIES = {"school", "provider", "course", "site", "partnership", "subject"}
OPEN_ENTITIES |= {"placement", "school_partnership"}
# the personal entities' owner-side reads, and who copies them through the kernel's feed
PERSONAL_RECORDS = {
    ("apply", "candidate"): OWN,
    ("apply", "application"): OWN | {"manage@apply"},
    ("register", "trainee"): OWN,
    ("dqt", "teacher"): OWN,
    ("hesa", "itt_record"): OWN,
    ("placements", "mentor"): OWN,
    ("claims", "mentor"): OWN,
    ("claims", "claim"): OWN,
}
PERSONAL_COPIES = {"application", "teacher", "itt_record"}

APPLY_VENDORS = frozenset({"manage@apply", *SYSTEMS_TO["apply"]})
# each service's own routes: (service, method, path) -> who
ROUTES: dict[tuple[str, str, str], frozenset[str]] = {
    ("gias", "GET", "/schools"): EVERYONE,
    ("gias", "GET", "/schools/{urn}"): EVERYONE,
    ("gias", "POST", "/schools"): OWN_WRITE,
    ("gias", "POST", "/schools/batch"): OWN_WRITE,
    ("gias", "PATCH", "/schools/{urn}"): OWN_WRITE,
    ("gias", "GET", "/edubase/downloads/public/edubasealldata{day}.csv"): EVERYONE,
    **{
        ("publish", "GET", f"/api/public/v1{p}"): EVERYONE
        for p in (
            "/recruitment_cycles/{year}/providers",
            "/recruitment_cycles/{year}/providers/{provider_code}",
            "/recruitment_cycles/{year}/providers/{provider_code}/locations",
            "/recruitment_cycles/{year}/courses",
            "/recruitment_cycles/{year}/providers/{provider_code}/courses",
            "/recruitment_cycles/{year}/providers/{provider_code}/courses/{course_code}",
            "/recruitment_cycles/{year}/providers/{provider_code}/courses/{course_code}/locations",
            "/subjects",
            "/subject_areas",
            "/provider_suggestions",
        )
    },
    **{
        ("publish", m, p): OWN_WRITE
        for m, p in (
            ("POST", "/providers"),
            ("POST", "/providers/batch"),
            ("PATCH", "/providers/{code}"),
            ("POST", "/providers/{code}/sites"),
            ("POST", "/providers/{code}/sites/batch"),
            ("POST", "/sites/batch"),
            ("PATCH", "/sites/{uuid}"),
            ("DELETE", "/sites/{uuid}"),
            ("POST", "/providers/{code}/courses"),
            ("POST", "/providers/{code}/courses/batch"),
            ("POST", "/courses/batch"),
            ("PATCH", "/courses/{uuid}"),
            ("DELETE", "/courses/{uuid}"),
            ("POST", "/partnerships"),
            ("DELETE", "/partnerships/{id}"),
        )
    },
    ("publish", "GET", "/partnerships"): OWN,
    ("find", "GET", "/courses"): EVERYONE,
    **{
        ("apply", m, p): OWN_WRITE
        for m, p in (
            ("POST", "/candidates"),
            ("POST", "/candidates/batch"),
            ("PATCH", "/candidates/{id}"),
            ("POST", "/applications"),
            ("POST", "/applications/batch"),
            ("POST", "/applications/{id}/accept-offer"),
            ("POST", "/applications/{id}/decline-offer"),
            ("POST", "/applications/{id}/withdraw"),
        )
    },
    ("apply", "GET", "/candidates/{id}"): OWN,
    ("apply", "GET", "/applications/{id}"): OWN,
    ("apply", "GET", "/api/v1/applications"): APPLY_VENDORS | {"auditor"},
    ("apply", "GET", "/api/v1/applications/{application_id}"): APPLY_VENDORS | {"auditor"},
    **{
        ("apply", "POST", f"/api/v1/applications/{{application_id}}/{a}"): APPLY_VENDORS
        for a in (
            "offer",
            "reject",
            "confirm-conditions-met",
            "conditions-not-met",
            "confirm-enrolment",
        )
    },
    # the lists a vendor maps qualifications by are a vendor's, as the real API's token guards
    **{
        ("apply", "GET", f"/api/v1/reference-data/{name}"): APPLY_VENDORS | {"auditor"}
        for name in (
            "gcse-subjects",
            "gcse-grades",
            "a-and-as-level-subjects",
            "a-and-as-level-grades",
        )
    },
    ("apply", "POST", "/api/v1/test-data/regenerate"): APPLY_VENDORS,
    ("apply", "GET", "/register-api/applications"): frozenset({"register@apply", "auditor"}),
    ("manage", "GET", "/applications"): OWN,
    ("manage", "GET", "/applications/{id}"): OWN,
    ("manage", "GET", "/partnerships"): OWN,
    **{
        ("manage", "POST", p): OWN_WRITE
        for p in (
            "/applications/{id}/notes",
            "/applications/{id}/offer",
            "/applications/{id}/reject",
            "/applications/{id}/confirm-conditions-met",
            "/partnerships",
        )
    },
    # Register's own API: its operator; a record system's token reaches only the Register API
    ("register", "GET", "/trainees"): OWN,
    ("register", "GET", "/trainees/{slug}"): OWN,
    ("register", "GET", "/trn-requests"): OWN,
    **{
        ("register", "POST", p): OWN_WRITE
        for p in (
            "/trainees",
            "/trainees/batch",
            "/trainees/{slug}/submit-for-trn",
            "/trainees/submit-for-trn/batch",
            "/trainees/{slug}/defer",
            "/trainees/{slug}/reinstate",
            "/trainees/{slug}/withdraw",
            "/trainees/{slug}/recommend-for-award",
        )
    },
    ("register", "GET", "/api/v2026.1/info"): OWN | SYSTEMS_TO["register"],
    ("register", "GET", "/api/v2026.1/trainees"): OWN | SYSTEMS_TO["register"],
    ("register", "GET", "/api/v2026.1/trainees/{trainee_id}"): OWN | SYSTEMS_TO["register"],
    **{
        ("register", m, p): OWN_WRITE | SYSTEMS_TO["register"]
        for m, p in (
            ("POST", "/api/v2026.1/trainees"),
            ("PUT", "/api/v2026.1/trainees/{trainee_id}"),
            ("POST", "/api/v2026.1/trainees/{trainee_id}/defer"),
            ("POST", "/api/v2026.1/trainees/{trainee_id}/withdraw"),
            ("POST", "/api/v2026.1/trainees/{trainee_id}/recommend-for-qts"),
        )
    },
    # Register's DQT credential: TRN requests and route statuses, and the people it copies
    ("dqt", "POST", "/v3/trn-requests"): OWN_WRITE | {"register@dqt"},
    ("dqt", "POST", "/v3/trn-requests/batch"): OWN_WRITE | {"register@dqt"},
    ("dqt", "GET", "/v3/trn-requests"): OWN | {"register@dqt"},
    ("dqt", "PUT", "/v3/persons/{trn}/routes-to-professional-statuses/{reference}"): (
        OWN_WRITE | {"register@dqt"}
    ),
    ("dqt", "GET", "/v3/teachers/{trn}"): OWN | {"register@dqt", "placements@dqt", "claims@dqt"},
    ("dqt", "GET", "/v3/persons/{trn}"): OWN | {"register@dqt", "placements@dqt", "claims@dqt"},
    # a read sent as a POST: the auditor reads one TRN at a time above
    ("dqt", "POST", "/v3/persons/find"): (
        OWN_WRITE | {"register@dqt", "placements@dqt", "claims@dqt"}
    ),
    ("dqt", "POST", "/v3/teachers/name-changes"): OWN_WRITE,
    ("dqt", "POST", "/v3/teachers/batch"): OWN_WRITE,
    ("hesa", "POST", "/apis/itt/1.1/students"): OWN_WRITE | SYSTEMS_TO["hesa"],
    ("hesa", "POST", "/apis/itt/1.1/students/batch"): OWN_WRITE | SYSTEMS_TO["hesa"],
    ("hesa", "GET", "/apis/itt/1.1/students/{husid}"): OWN,
    ("hesa", "GET", "/apis/itt/1.1/CensusData/{collection}/{from_date}"): OWN | {"register@hesa"},
    **{
        (service, m, p): who
        for service in ("placements", "claims")
        for m, p, who in (
            ("GET", "/schools", EVERYONE),
            ("GET", "/schools/{urn}", EVERYONE),
            ("PATCH", "/schools/{urn}", OWN_WRITE),
            ("GET", "/mentors", OWN),
            ("GET", "/mentors/{trn}", OWN),
            ("POST", "/mentors", OWN_WRITE),
            ("POST", "/mentors/batch", OWN_WRITE),
            ("DELETE", "/mentors/{trn}/schools/{urn}", OWN_WRITE),
        )
    },
    ("placements", "GET", "/placements"): EVERYONE,
    ("placements", "GET", "/placements/{id}"): EVERYONE,
    ("placements", "GET", "/partnerships"): EVERYONE,
    **{
        ("placements", m, p): OWN_WRITE
        for m, p in (
            ("POST", "/placements"),
            ("POST", "/placements/batch"),
            ("PATCH", "/placements/{id}"),
            ("DELETE", "/placements/{id}"),
            ("POST", "/partnerships"),
            ("POST", "/partnerships/batch"),
            ("DELETE", "/partnerships/{id}"),
        )
    },
    ("claims", "GET", "/claims"): OWN,
    ("claims", "GET", "/claims/{id}"): OWN,
    **{
        ("claims", m, p): OWN_WRITE
        for m, p in (
            ("POST", "/claims"),
            ("POST", "/claims/batch"),
            ("POST", "/claims/{id}/mentor_trainings"),
            ("PUT", "/claims/{id}/mentor_trainings"),
            ("POST", "/claims/{id}/submit"),
        )
    },
    **{
        (system, m, p): who
        for system in RECORD_SYSTEMS
        for m, p, who in (
            ("GET", "/institutions", EVERYONE),
            ("GET", "/institutions/{provider_code}", EVERYONE),
            ("POST", "/institutions/batch", OWN_WRITE),
        )
    },
}


def routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for route in iter_route_contexts(app.routes):
        for method in sorted(route.methods or ()):
            assert route.path is not None
            yield method, route.path


def decided(service: str, app: FastAPI) -> Iterator[tuple[str, str, frozenset[str]]]:
    """Each route of the app with a concrete path, and who the table lets call it."""
    owned = [e.name for e in LINE.owned_by(service)]
    copied = sorted({e.entity for e in LINE.edges_into(service)})
    for method, path in routes(app):
        if (method, path) in KERNEL:
            yield method, path.replace("{", "").replace("}", ""), KERNEL[method, path]
        elif path in ("/feed/{entity}", "/records/{entity}"):
            for entity in owned:
                who = EVERYONE if entity in OPEN_ENTITIES else PERSONAL_RECORDS[service, entity]
                yield method, path.replace("{entity}", entity), who
        elif path.startswith("/copies/"):
            for entity in copied:
                personal = entity in PERSONAL_COPIES
                # a copy is read-only, but for the editable school contact details
                if method in ("POST", "PUT", "DELETE"):
                    who = NOBODY
                elif method == "PATCH":
                    editable = any(
                        e.editable for e in LINE.edges_into(service) if e.entity == entity
                    )
                    who = OWN_WRITE if editable else NOBODY
                else:
                    who = OWN if personal else EVERYONE
                yield method, path.replace("{entity}", entity).replace("{key}", "x"), who
        elif path.startswith("/checksums/"):
            side = "records" if path.startswith("/checksums/records") else "copies"
            for edge in LINE.edges:
                if service != (edge.owner if side == "records" else edge.consumer):
                    continue
                who = OWN if LINE.entity(edge.entity).personal else EVERYONE
                yield method, path.replace("{edge}", edge.name), who
        else:
            assert (service, method, path) in ROUTES, f"no decision for {service} {method} {path}"
            filled = path
            for name, value in (("{year}", "2027"), ("{day}", "20261004")):
                filled = filled.replace(name, value)
            yield method, _filled(filled), ROUTES[service, method, path]


def _filled(path: str) -> str:
    while "{" in path:
        start = path.index("{")
        path = path[:start] + "x" + path[path.index("}", start) + 1 :]
    return path


def allowed(response: httpx.Response) -> bool:
    return response.status_code not in (401, 403)


async def test_exactly_the_intended_credentials_reach_each_route(state_dir: Path) -> None:
    names = [s.name for s in LINE.services]
    cells = 0
    wrong: list[str] = []
    async with in_process_line(names, state_dir) as line:
        for service in names:
            transport = line.transports[service]
            assert isinstance(transport, httpx.ASGITransport)
            app = transport.app
            assert isinstance(app, FastAPI)
            for method, path, who in decided(service, app):
                for holder, token in ISSUED.items():
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    body: dict[str, str] | None = (
                        None if method in ("GET", "HEAD", "DELETE") else {}
                    )
                    response = await line[service].request(method, path, headers=headers, json=body)
                    cells += 1
                    if response.status_code == 401:
                        assert "WWW-Authenticate" in response.headers, (service, method, path)
                    if allowed(response) != (holder in who):
                        wrong.append(f"{service} {method} {path} {holder}: {response.status_code}")
    print(f"{cells} cells checked")
    assert cells > 10_000
    assert not wrong, "\n".join(wrong[:40])
