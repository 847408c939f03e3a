"""Apply's vendor API v1.0 as a student record system uses it, every answer checked by the spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import ValidationError

from lines.becoming_a_teacher.services.apply.settings import ApplySettings
from lines.becoming_a_teacher.services.apply.vendor_api import PREFIX, VENDOR_STATUS
from lines.becoming_a_teacher.topology import LINE, record_system_for
from serviceline.stack.launcher import LineConfig, service_env
from serviceline.testing import API, LineUnderTest, headers_of, in_process_line
from tests import builders, spec_schemas

pytestmark = pytest.mark.anyio

SPEC = "apply-vendor-api-v1.0.yml"
THESIS = "2FR"  # builders.provider()'s university, which runs Thesis Cloud
ELSEWHERE = "1UR"  # a university that runs SITS: none of Thesis's business
START = "2026-10-01T00:00:00Z"  # before the line's clock starts: a record system's first poll


@dataclass
class StudentRecordSystem:
    """A university's record system, as vendors build one against the v1.0 guidance.

    It polls `GET /applications?since=` with the time its last successful poll began, keeps
    each application by id (the answer replaces what it held), and posts its admissions
    tutors' decisions with their attribution, keeping the application each decision answers
    with. Every request body and every answer is checked against the spec.
    """

    client: httpx.AsyncClient
    headers: dict[str, str]
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_poll: str = START

    async def call(self, method: str, path: str, url: str, body: Any = None, **params: str) -> Any:
        if body is not None:
            spec_schemas.request_conforms(SPEC, method, path, body)
        response = await self.client.request(
            method, url, json=body, params=params, headers=self.headers
        )
        return spec_schemas.answers(SPEC, method, path, response)

    async def poll(self, now: datetime) -> set[str]:
        """The applications changed since the last poll, kept; returns their ids."""
        url = f"{PREFIX}/applications"
        answer = await self.call("GET", "/applications", url, since=self.last_poll)
        for application in answer["data"]:
            self.applications[application["id"]] = application
        self.last_poll = now.isoformat()
        return {application["id"] for application in answer["data"]}

    async def decide(self, id: str, action: str, data: dict[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"meta": builders.vendor_meta()}
        if data is not None:
            body["data"] = data
        path = f"/applications/{{application_id}}/{action}"
        answer = await self.call("POST", path, f"{PREFIX}/applications/{id}/{action}", body)
        if "data" in answer:
            self.applications[id] = answer["data"]
        return answer

    def status(self, id: str) -> str:
        status: str = self.applications[id]["attributes"]["status"]
        return status


def thesis(line: LineUnderTest) -> StudentRecordSystem:
    assert record_system_for(THESIS) == "thesis"
    assert record_system_for(ELSEWHERE) == "sits"
    return StudentRecordSystem(line["apply"], headers_of("thesis", "apply"))


async def universities_in_apply(line: LineUnderTest) -> dict[str, str]:
    """A course at each university, copied into Apply; their UUIDs by provider code."""
    courses = {
        code: await builders.publish_course(
            line, builders.provider(code), builders.course(), builders.site()
        )
        for code in (THESIS, ELSEWHERE)
    }
    await line.control.sync()
    return courses


async def candidate_does(line: LineUnderTest, id: str, action: str) -> None:
    response = await line["apply"].post(f"/applications/{id}/{action}", headers=API)
    assert response.status_code == 200, response.text


async def held_by_apply(line: LineUnderTest, id: str) -> dict[str, Any]:
    response = await line["apply"].get(f"/applications/{id}", headers=API)
    assert response.status_code == 200, response.text
    held: dict[str, Any] = response.json()
    return held


async def matches_apply(line: LineUnderTest, system: StudentRecordSystem) -> None:
    """Each application the record system holds says what Apply holds of it."""
    for id, copied in system.applications.items():
        held = await held_by_apply(line, id)
        attributes = copied["attributes"]
        assert attributes["status"] == VENDOR_STATUS[held["status"]], id
        assert datetime.fromisoformat(attributes["updated_at"]) == datetime.fromisoformat(
            held["updated_at"]
        )
        assert (attributes["candidate"]["first_name"], attributes["candidate"]["last_name"]) == (
            held["first_name"],
            held["last_name"],
        )
        assert attributes["candidate"]["id"] == held["candidate_id"]
        course = attributes["course"]
        assert (course["course_code"], course["site_code"], course["study_mode"]) == (
            "3GTY",
            held["site_code"],
            held["study_mode"],
        )
        offer = attributes["offer"]
        assert (offer or {}).get("conditions") == (
            held["offer_conditions"] if held["offer_made_at"] else None
        )
        rejection = attributes["rejection"]
        assert (rejection or {}).get("reason") == held["rejection_reason"]


async def test_a_record_system_polls_since_its_last_poll_and_its_copy_matches_apply(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        courses = await universities_in_apply(line)
        first = await builders.submitted(line["apply"], courses[THESIS], "first@example.com")
        second = await builders.submitted(line["apply"], courses[THESIS], "second@example.com")
        await builders.submitted(line["apply"], courses[ELSEWHERE], "elsewhere@example.com")
        system = thesis(line)

        await line.control.advance(by="10m")
        assert await system.poll(await line.control.now()) == {first, second}
        await matches_apply(line, system)
        # nothing changed since: the next poll finds nothing
        await line.control.advance(by="10m")
        assert await system.poll(await line.control.now()) == set()

        await line.control.advance(by="1h")
        await candidate_does(line, first, "withdraw")
        third = await builders.submitted(line["apply"], courses[THESIS], "third@example.com")
        assert await system.poll(await line.control.now()) == {first, third}
        assert (system.status(first), system.status(second)) == (
            "withdrawn",
            "awaiting_provider_decision",
        )
        await matches_apply(line, system)


async def test_a_record_system_decides_through_every_decision_and_its_copy_matches_apply(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        courses = await universities_in_apply(line)
        ids = [
            await builders.submitted(line["apply"], courses[THESIS], f"c{n}@example.com")
            for n in range(4)
        ]
        recruit, unmet, rejected, withdrawn = ids
        system = thesis(line)
        assert await system.poll(await line.control.now()) == set(ids)

        for id in (recruit, unmet, withdrawn):
            await system.decide(id, "offer", {"conditions": ["Fitness to teach check"]})
        await system.decide(rejected, "reject", builders.rejection(reason="No places left"))
        # an offer not yet accepted is withdrawn through reject, as v1.0 says
        await system.decide(withdrawn, "reject", builders.rejection(reason="Course closed"))
        assert [system.status(id) for id in ids] == ["offer", "offer", "rejected", "rejected"]

        await line.control.advance(by="1h")
        for id in (recruit, unmet):
            await candidate_does(line, id, "accept-offer")
        # its own decisions come back too: they changed the applications since its last poll
        assert await system.poll(await line.control.now()) == set(ids)
        assert system.status(recruit) == "pending_conditions"
        await system.decide(recruit, "confirm-conditions-met")
        await system.decide(unmet, "conditions-not-met")
        before = system.applications[recruit]
        await system.decide(recruit, "confirm-enrolment")
        assert system.applications[recruit] == before  # deprecated: nothing changes
        assert [system.status(id) for id in ids] == [
            "recruited",
            "conditions_not_met",
            "rejected",
            "rejected",
        ]
        await matches_apply(line, system)

        # what the record system was told is what it reads back
        for id in ids:
            url = f"{PREFIX}/applications/{id}"
            read = await system.call("GET", "/applications/{application_id}", url)
            assert read["data"] == system.applications[id]


async def test_a_record_system_reads_the_reference_lists_and_the_deprecated_test_data(
    state_dir: Path,
) -> None:
    async with in_process_line(["apply"], state_dir) as line:
        system = thesis(line)
        lists = {}
        for path in (
            "/reference-data/gcse-subjects",
            "/reference-data/gcse-grades",
            "/reference-data/a-and-as-level-subjects",
            "/reference-data/a-and-as-level-grades",
        ):
            lists[path] = (await system.call("GET", path, PREFIX + path))["data"]
        assert "Maths" in lists["/reference-data/gcse-subjects"]
        assert {"9", "A*", "9-8"} <= set(lists["/reference-data/gcse-grades"])
        assert "Mathematics" in lists["/reference-data/a-and-as-level-subjects"]
        assert lists["/reference-data/a-and-as-level-grades"][:2] == ["A*", "A"]
        for values in lists.values():
            assert len(values) == len(set(values))
        path = "/test-data/regenerate"
        regenerated = await system.call("POST", path, PREFIX + path, count="5")
        assert "removed" in regenerated["data"]["message"]
        # the reference lists are a vendor's too: without a token, the spec's 401
        anonymous = await line["apply"].get(f"{PREFIX}/reference-data/gcse-grades")
        assert anonymous.status_code == 401
        spec_schemas.conforms(SPEC, anonymous.json(), "UnauthorizedResponse")


def valid_body(path: str) -> dict[str, Any]:
    meta = builders.vendor_meta()
    if path.endswith("/offer"):
        return {"data": {"conditions": ["Degree"]}, "meta": meta}
    if path.endswith("/reject"):
        return {"data": builders.rejection(), "meta": meta}
    return {"meta": meta}


def required_fields(schema: Any, body: Any, at: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The dotted path of every field the spec requires that the body holds, depth first."""
    schema = spec_schemas.resolved(SPEC, schema)
    for name in schema.get("required", []):
        yield (*at, name)
        inner = schema["properties"][name]
        if isinstance(body.get(name), dict):
            yield from required_fields(inner, body[name], (*at, name))


def without(body: dict[str, Any], field: tuple[str, ...]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(body))
    parent = copied
    for name in field[:-1]:
        parent = parent[name]
    del parent[field[-1]]
    return copied


async def test_every_decision_refuses_a_body_without_a_field_the_spec_requires(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply"], state_dir) as line:
        courses = await universities_in_apply(line)
        id = await builders.submitted(line["apply"], courses[THESIS], "c@example.com")
        headers = headers_of("thesis", "apply")
        posts = sorted(p for m, p in spec_schemas.operations(SPEC) if m == "POST" and "{" in p)
        checked = set()
        for path in posts:
            body = valid_body(path)
            spec_schemas.request_conforms(SPEC, "POST", path, body)
            schema = spec_schemas.request_schema(SPEC, "POST", path)
            for missing in required_fields(schema, body):
                url = PREFIX + path.replace("{application_id}", id)
                response = await line["apply"].post(
                    url, json=without(body, missing), headers=headers
                )
                refusal = spec_schemas.answers(SPEC, "POST", path, response)
                assert response.status_code == 422, response.text
                named = ".".join(missing)
                assert any(e["message"].startswith(f"{named}:") for e in refusal["errors"]), refusal
                checked.add(f"{path.rsplit('/', 1)[1]} {named}")
        assert {"reject data.date", "reject data.reason", "offer data.conditions"} <= checked
        assert "confirm-enrolment meta.attribution.user_id" in checked
        # none of those refusals moved the application
        assert (await held_by_apply(line, id))["status"] == "awaiting_provider_decision"


async def test_application_url_follows_the_line_ports(state_dir: Path, tmp_path: Path) -> None:
    config = LineConfig(tmp_path, port_offset=1000)
    env = service_env(config, LINE.service("apply"), LINE, None)
    manage = f"http://127.0.0.1:{LINE.service('manage').port + 1000}"
    assert json.loads(env["APPLY_PUBLIC_URLS"]) == {"manage": manage}
    assert ApplySettings(public_urls=json.loads(env["APPLY_PUBLIC_URLS"])).manage_url() == manage

    public_urls = {"manage": manage}
    async with in_process_line(["publish", "apply"], state_dir, public_urls=public_urls) as line:
        courses = await universities_in_apply(line)
        id = await builders.submitted(line["apply"], courses[THESIS], "c@example.com")
        system = thesis(line)
        await system.poll(await line.control.now())
        assert system.applications[id]["attributes"]["application_url"] == (
            f"{manage}/applications/{id}"
        )


def test_the_spec_check_can_fail() -> None:
    path = "/applications/{application_id}"
    with pytest.raises(ValidationError):
        spec_schemas.answers(SPEC, "GET", path, httpx.Response(200, json={"data": {"id": "1"}}))
    with pytest.raises(AssertionError, match="documents no 500"):
        spec_schemas.answers(SPEC, "GET", path, httpx.Response(500, json={}))
    undated = {"data": {"reason": "No places"}, "meta": builders.vendor_meta()}
    reject = "/applications/{application_id}/reject"
    with pytest.raises(ValidationError):
        spec_schemas.request_conforms(SPEC, "POST", reject, undated)
