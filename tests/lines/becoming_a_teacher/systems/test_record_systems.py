"""Student record systems: each polls Apply for its own universities, decides, pushes trainees."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from lines.becoming_a_teacher.identifiers import husid
from lines.becoming_a_teacher.systems.record_system.jobs import draw
from lines.becoming_a_teacher.systems.sits.settings import SitsSettings
from lines.becoming_a_teacher.topology import LINE, RECORD_SYSTEMS, record_system_for
from serviceline.stack.control import LineControl
from serviceline.testing import (
    ADMIN,
    ADMIN_TOKEN,
    API,
    AUDITOR,
    LineUnderTest,
    names_field,
    reference,
    service_app,
    service_settings,
)
from tests import builders

pytestmark = pytest.mark.anyio

START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday: the line's clock starts here
# a university each system runs (record_system_for), and a second one SITS runs
UNIVERSITY = {"sits": "1UR", "banner": "1AB", "oracle": "U02", "thesis": "2FR"}
SITS_TOO = "U08"
EVERYONE_SINCE = {"since": "2026-10-01T00:00:00Z"}
REGISTER_SPEC = reference("specs", "register-api-v2026.1.yaml")


def answered(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def vendor(name: str) -> dict[str, str]:
    """The bearer token a vendor holds for Apply's vendor API."""
    token = "manage-apply-token" if name == "manage" else f"{name}-apply-token"
    return {"Authorization": f"Bearer {token}"}


class Gate(httpx.AsyncBaseTransport):
    """Stands before a service the record systems post to, and can fail them.

    `down`: 503 without passing the request on. `lossy`: the service takes the request, but
    its answer is lost on the way back, as on a timeout.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False
        self.lossy = False
        self.posted: list[Any] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, json={"detail": "down for maintenance"})
        if request.method == "POST":
            self.posted.append(json.loads(await request.aread()))
        response = await self.inner.handle_async_request(request)
        if self.lossy:
            return httpx.Response(504, json={"detail": "gateway timeout"})
        return response


class SpecLoader(yaml.SafeLoader):
    """The spec's examples hold "dates" such as 2023-13-01: read every scalar date as text."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def trainee_request() -> Draft202012Validator:
    """The Register API v2026.1's POST /trainees body, as its spec defines it."""
    spec = yaml.load(REGISTER_SPEC.read_text(), Loader=SpecLoader)
    post = spec["paths"]["/api/{api_version}/trainees"]["post"]
    return Draft202012Validator(post["requestBody"]["content"]["application/json"]["schema"])


@dataclass
class RecordLine(LineUnderTest):
    gates: dict[str, Gate] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def record_line(
    state_dir: Path,
    names: Sequence[str],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[RecordLine]:
    """Real apps wired by ASGI transports; Register and HESA behind gates; the rest answer 503.

    `settings` tunes one service's knobs, e.g. {"sits": {"offer_share": 1.0}}.
    """
    transports: dict[str, httpx.AsyncBaseTransport] = {
        service.name: httpx.MockTransport(
            lambda _request, name=service.name: httpx.Response(
                503, json={"detail": f"{name} is not in this test's line"}
            )
        )
        for service in LINE.services
    }
    apps = {
        name: service_app(
            name, service_settings(name, state_dir, **(settings or {}).get(name, {})), transports
        )
        for name in names
    }
    direct = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
    transports.update(direct)
    gates: dict[str, Gate] = {
        name: Gate(direct[name]) for name in ("register", "hesa") if name in direct
    }
    transports.update(gates)
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=direct[name], base_url=f"http://{name}")
            )
            for name in names
        }
        yield RecordLine(clients, LineControl(clients, ADMIN_TOKEN, LINE), gates=gates)


async def course_at(line: LineUnderTest, code: str, **provider: Any) -> str:
    """A provider in Publish with site A and course 3GTY; the course's uuid."""
    await builders.publish_provider(line, builders.provider(code, **provider), builders.site())
    path = f"/providers/{code}/courses"
    course = answered(await line["publish"].post(path, json=builders.course(), headers=API), 201)
    uuid: str = course["uuid"]
    return uuid


async def courses_in_apply(line: LineUnderTest, *codes: str) -> dict[str, str]:
    """Universities' courses in Publish, and Apply's copies of them: uuid by provider code."""
    uuids = {code: await course_at(line, code) for code in codes}
    for entity in ("provider", "course", "site"):
        await line.control.run_edge(f"publish.{entity}.apply")
    return uuids


async def apply_to(line: LineUnderTest, course_uuid: str, **overrides: Any) -> str:
    """A new candidate applies to the course; the application's id."""
    apply = line["apply"]
    candidate = answered(
        await apply.post("/candidates", json=builders.candidate(), headers=API), 201
    )
    body = builders.application(candidate["id"], course_uuid, **overrides)
    id: str = answered(await apply.post("/applications", json=body, headers=API), 201)["id"]
    return id


async def copy_in(line: LineUnderTest, service: str, id: str) -> dict[str, Any] | None:
    """`service`'s copy of application `id`, or None while it has none."""
    response = await line[service].get(f"/copies/application/{id}", headers=AUDITOR)
    if response.status_code == 404:
        return None
    copy: dict[str, Any] = answered(response)
    return copy


async def in_apply(line: LineUnderTest, id: str) -> dict[str, Any]:
    application: dict[str, Any] = answered(
        await line["apply"].get(f"/api/v1/applications/{id}", headers=vendor("manage"))
    )["data"]["attributes"]
    return application


async def advance(line: LineUnderTest, by: timedelta) -> dict[tuple[str, str], list[Any]]:
    """Move every clock on from the line's start; what each (service, job) returned, in order.

    A record system's job never fails: what it could not send it reports, and sends again.
    """
    ran = await line.control.advance(to=START + by)
    results: dict[tuple[str, str], list[Any]] = {}
    for job in ran:
        assert job["ok"] or job["service"] not in RECORD_SYSTEMS, job
        results.setdefault((job["service"], job["job"]), []).append(job["result"])
    return results


async def status_in(line: LineUnderTest, service: str, id: str) -> str:
    copy = await copy_in(line, service, id)
    assert copy is not None, f"{service} has no copy of {id}"
    status: str = copy["status"]
    return status


def moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def test_a_record_system_sees_only_the_universities_that_run_it(state_dir: Path) -> None:
    async with record_line(state_dir, ["publish", "apply", "sits", "banner"]) as line:
        assert record_system_for("2AB") == "sits"  # but 2AB is a SCITT: SITS is no concern of it
        scitt = await course_at(line, "2AB", provider_type="scitt")
        courses = await courses_in_apply(line, UNIVERSITY["sits"], SITS_TOO, UNIVERSITY["banner"])
        ids = {code: await apply_to(line, uuid) for code, uuid in courses.items()}
        ids["2AB"] = await apply_to(line, scitt)

        async def listed(name: str) -> set[str]:
            body = answered(
                await line["apply"].get(
                    "/api/v1/applications", params=EVERYONE_SINCE, headers=vendor(name)
                )
            )
            return {application["id"] for application in body["data"]}

        assert await listed("sits") == {ids["1UR"], ids[SITS_TOO]}
        assert await listed("banner") == {ids["1AB"]}
        assert await listed("oracle") == set()
        assert await listed("manage") == set(ids.values())

        other = ids["1AB"]
        path = f"/api/v1/applications/{other}"
        answered(await line["apply"].get(path, headers=vendor("sits")), 404)
        reject = {"data": builders.rejection(), "meta": builders.vendor_meta()}
        refused = await line["apply"].post(f"{path}/reject", json=reject, headers=vendor("sits"))
        assert refused.status_code == 404, refused.text
        assert (await in_apply(line, other))["status"] == "awaiting_provider_decision"

        await line.control.run_edge("apply.application.sits")
        await line.control.run_edge("apply.application.banner")
        copies = answered(await line["sits"].get("/copies/application", headers=AUDITOR))["copies"]
        assert {copy["id"] for copy in copies} == {ids["1UR"], ids[SITS_TOO]}
        assert {copy["provider_code"] for copy in copies} == {"1UR", SITS_TOO}
        banner = answered(await line["banner"].get("/copies/application", headers=AUDITOR))[
            "copies"
        ]
        assert [copy["id"] for copy in banner] == [other]


async def test_a_new_application_reaches_a_system_only_when_it_polls(state_dir: Path) -> None:
    async with record_line(state_dir, ["publish", "apply", "sits", "thesis"]) as line:
        courses = await courses_in_apply(line, UNIVERSITY["sits"], UNIVERSITY["thesis"])
        at_sits = await apply_to(line, courses["1UR"])
        at_thesis = await apply_to(line, courses["2FR"])

        await advance(line, timedelta(minutes=14))
        assert await copy_in(line, "sits", at_sits) is None
        await advance(line, timedelta(minutes=15))  # SITS polls every 15 minutes
        copy = await copy_in(line, "sits", at_sits)
        assert copy is not None
        assert moment(copy["arrived_at"]) == START + timedelta(minutes=15)
        assert (copy["status"], copy["provider_code"]) == ("awaiting_provider_decision", "1UR")
        assert (copy["first_name"], copy["email"]) == ("Boris", "boris.brown@example.com")
        assert copy["husid"] == husid(at_sits)
        assert len(copy["husid"]) == 13
        assert copy["provider_trainee_id"] == f"S{at_sits.upper()}"

        await advance(line, timedelta(hours=3, minutes=59))
        assert await copy_in(line, "thesis", at_thesis) is None
        await advance(line, timedelta(hours=4))  # Thesis polls every four hours
        copy = await copy_in(line, "thesis", at_thesis)
        assert copy is not None
        assert moment(copy["arrived_at"]) == START + timedelta(hours=4)
        assert await copy_in(line, "sits", at_thesis) is None
        assert await copy_in(line, "thesis", at_sits) is None


async def test_decisions_reach_apply_at_once_and_the_copies_at_their_syncs(
    state_dir: Path,
) -> None:
    names = ["publish", "apply", "manage", "sits"]
    quick = {
        "offer_share": 1.0,
        "decide_after": timedelta(hours=1),
        "confirm_after": timedelta(hours=2),
    }
    async with record_line(state_dir, names, {"sits": quick}) as line:
        course = (await courses_in_apply(line, UNIVERSITY["sits"]))["1UR"]
        id = await apply_to(line, course)
        withdrawn = await apply_to(line, course)

        # SITS copies both at 00:15 and decides an hour on, at its first run after that;
        # meanwhile one candidate withdraws, which SITS learns only at its next poll
        await advance(line, timedelta(hours=1, minutes=16))
        answered(await line["apply"].post(f"/applications/{withdrawn}/withdraw", headers=API))
        assert (await in_apply(line, id))["status"] == "awaiting_provider_decision"
        ran = await advance(line, timedelta(hours=1, minutes=20))
        (decided,) = ran[("sits", "sits.decide")]
        assert decided["offered"] == 1
        assert list(decided["failed"]["apply"]) == [withdrawn]
        assert "422" in decided["failed"]["apply"][withdrawn]
        assert "'withdrawn'" in decided["failed"]["apply"][withdrawn]

        offer = await in_apply(line, id)
        assert offer["status"] == "offer"
        assert offer["offer"]["conditions"] == ["Enhanced DBS check", "Fitness to teach"]
        copy = await copy_in(line, "sits", id)
        assert copy is not None
        assert (copy["decision"], copy["status"]) == ("offer", "awaiting_provider_decision")
        assert moment(copy["decided_at"]) == START + timedelta(hours=1, minutes=20)
        # Manage synced at 01:20 too, just before SITS decided
        assert await status_in(line, "manage", id) == "awaiting_provider_decision"

        await advance(line, timedelta(hours=1, minutes=25))  # Manage: every 5 minutes
        assert await status_in(line, "manage", id) == "offer"
        assert await status_in(line, "sits", id) == "awaiting_provider_decision"
        await advance(line, timedelta(hours=1, minutes=30))  # SITS: every 15 minutes
        assert await status_in(line, "sits", id) == "offer"
        assert await status_in(line, "sits", withdrawn) == "withdrawn"
        ran = await advance(line, timedelta(hours=1, minutes=35))
        assert ran[("sits", "sits.decide")] == [{"failed": {}}]  # it knows of the withdrawal

        # the candidate accepts at 01:35; SITS confirms the conditions met two hours later
        answered(await line["apply"].post(f"/applications/{id}/accept-offer", headers=API))
        await advance(line, timedelta(hours=3, minutes=34))
        assert (await in_apply(line, id))["status"] == "pending_conditions"
        ran = await advance(line, timedelta(hours=3, minutes=35))
        assert ran[("sits", "sits.decide")] == [{"confirmed": 1, "failed": {}}]
        recruited = await in_apply(line, id)
        assert recruited["status"] == "recruited"
        assert moment(recruited["recruited_at"]) == START + timedelta(hours=3, minutes=35)
        assert await status_in(line, "manage", id) == "pending_conditions"
        await advance(line, timedelta(hours=3, minutes=45))
        assert await status_in(line, "manage", id) == "recruited"
        assert await status_in(line, "sits", id) == "recruited"


TRAINEE_LINE = ["publish", "apply", "banner", "register", "dqt", "hesa"]
# Banner, offering at once and without conditions: an accepted offer recruits the candidate
EAGER_BANNER = {
    "banner": {
        "offer_share": 1.0,
        "offer_conditions": [],
        "decide_after": timedelta(hours=1),
        # one at a time: Register's POST /trainees holds its database across its call to DQT,
        # so two at once stall an in-process line
        "fan_out": 1,
    }
}


async def recruited(line: RecordLine, *codes: str) -> list[str]:
    """A candidate recruited to each university's course by 03:00, as Banner's copy says."""
    courses = await courses_in_apply(line, *codes)
    ids = [await apply_to(line, courses[code]) for code in codes]
    await advance(line, timedelta(hours=2, minutes=10))  # Banner copies at 01:00, offers at 02:10
    for id in ids:
        accepted = f"/applications/{id}/accept-offer"
        assert answered(await line["apply"].post(accepted, headers=API))["status"] == "recruited"
    await advance(line, timedelta(hours=3))
    for id in ids:
        assert await status_in(line, "banner", id) == "recruited"
    return ids


async def set_up(line: LineUnderTest, system: str, *institutions: dict[str, Any]) -> None:
    path = "/institutions/batch"
    answered(await line[system].post(path, json=list(institutions), headers=API))


async def test_a_recruited_trainee_goes_to_register_and_hesa_once(state_dir: Path) -> None:
    async with record_line(state_dir, TRAINEE_LINE, EAGER_BANNER) as line:
        await set_up(line, "banner", builders.institution("1AB", ukprn="10007141"))
        (id,) = await recruited(line, UNIVERSITY["banner"])

        ran = await advance(line, timedelta(days=1, hours=2))  # Banner sends every night at 2
        assert ran[("banner", "banner.submit_trainees")] == [
            {"submitted_to_register": 1, "submitted_to_hesa": 1, "failed": {}}
        ]
        (sent,) = line.gates["register"].posted
        trainee_request().validate(sent)
        assert sent["data"]["study_mode"] == "63"  # Banner's code for full time
        assert (sent["data"]["hesa_id"], sent["data"]["ukprn"]) == (husid(id), "10007141")
        copy = await copy_in(line, "banner", id)
        assert copy is not None
        assert moment(copy["submitted_to_register_at"]) == START + timedelta(days=1, hours=2)
        assert moment(copy["submitted_to_hesa_at"]) == START + timedelta(days=1, hours=2)
        path = f"/api/v2026.1/trainees/{copy['register_trainee_id']}"
        trainee = answered(await line["register"].get(path, headers=API))
        assert (trainee["hesa_id"], trainee["first_names"]) == (husid(id), "Boris")
        assert trainee["provider_trainee_id"] == f"B{id.upper()}"
        assert trainee["record_source"] == "api"
        student = answered(
            await line["hesa"].get(f"/apis/itt/1.1/students/{husid(id)}", headers=API)
        )
        assert (student["F_UKPRN"], student["F_MODE"]) == ("10007141", "63")
        assert (student["F_OWNSTU"], student["F_APPLYAPPLICATIONID"]) == (f"B{id.upper()}", id)

        ran = await advance(line, timedelta(days=2, hours=2))
        assert ran[("banner", "banner.submit_trainees")] == [{"failed": {}}]
        assert len(line.gates["register"].posted) == 1
        assert len(line.gates["hesa"].posted) == 1


async def test_a_failed_submission_is_reported_and_sent_again_at_the_next_run(
    state_dir: Path,
) -> None:
    other = "U05"  # a second university running Banner, not yet set up in it
    assert record_system_for(other) == "banner"
    async with record_line(state_dir, TRAINEE_LINE, EAGER_BANNER) as line:
        await set_up(line, "banner", builders.institution("1AB", ukprn="10007141"))
        first, second = await recruited(line, UNIVERSITY["banner"], other)

        # Register takes both trainees, but its answers are lost; HESA is down
        line.gates["register"].lossy = True
        line.gates["hesa"].down = True
        ran = await advance(line, timedelta(days=1, hours=2))
        (night,) = ran[("banner", "banner.submit_trainees")]
        assert set(night) == {"failed"}
        assert set(night["failed"]["register"]) == {first, second}
        assert "504" in night["failed"]["register"][first]
        assert "503" in night["failed"]["hesa"][first]
        assert "no institution 'U05'" in night["failed"]["hesa"][second]
        for id in (first, second):
            copy = await copy_in(line, "banner", id)
            assert copy is not None
            assert copy["submitted_to_register_at"] is None
            assert copy["submitted_to_hesa_at"] is None

        # the next night Register names the trainees it already has: nothing is doubled
        line.gates["register"].lossy = False
        line.gates["hesa"].down = False
        await set_up(line, "banner", builders.institution(other, ukprn="10007158"))
        ran = await advance(line, timedelta(days=2, hours=2))
        assert ran[("banner", "banner.submit_trainees")] == [
            {"submitted_to_register": 2, "submitted_to_hesa": 2, "failed": {}}
        ]
        trainees = answered(await line["register"].get("/api/v2026.1/trainees", headers=API))
        assert trainees["meta"]["total_count"] == 2
        slugs = {t["hesa_id"]: t["trainee_id"] for t in trainees["data"]}
        for id in (first, second):
            copy = await copy_in(line, "banner", id)
            assert copy is not None
            assert copy["register_trainee_id"] == slugs[copy["husid"]]
            assert moment(copy["submitted_to_hesa_at"]) == START + timedelta(days=2, hours=2)
        student = answered(
            await line["hesa"].get(f"/apis/itt/1.1/students/{husid(second)}", headers=API)
        )
        assert student["F_UKPRN"] == "10007158"

        ran = await advance(line, timedelta(days=3, hours=2))
        assert ran[("banner", "banner.submit_trainees")] == [{"failed": {}}]
        assert len(line.gates["register"].posted) == 4
        assert len(line.gates["hesa"].posted) == 2


def ids_drawn(count: int, *, below: float = 1.0, at_least: float = 0.0) -> list[str]:
    """Application ids whose offer draw falls in [at_least, below): how the systems decide."""
    found = []
    for number in range(1, 10_000):
        id = f"{number:010x}"
        if at_least <= draw(id, "offer") < below:
            found.append(id)
        if len(found) == count:
            return found
    raise AssertionError("no such ids")


async def test_each_system_runs_on_its_own_schedules(state_dir: Path) -> None:
    async with record_line(state_dir, RECORD_SYSTEMS) as line:
        due = {}
        for system in RECORD_SYSTEMS:
            jobs = answered(await line[system].get("/admin/jobs", headers=ADMIN))
            due.update({job["name"]: moment(job["due_at"]) for job in jobs})
        assert due["apply.application.sits"] == START + timedelta(minutes=15)
        assert due["apply.application.thesis"] == START + timedelta(hours=4)
        assert due["sits.decide"] == START + timedelta(minutes=5)
        assert due["banner.decide"] == START + timedelta(minutes=10)
        assert due["sits.submit_trainees"] == datetime(2026, 10, 9, 18, tzinfo=UTC)  # Friday
        assert due["banner.submit_trainees"] == datetime(2026, 10, 5, 2, tzinfo=UTC)  # nightly
        assert due["oracle.submit_trainees"] == datetime(2026, 10, 5, 6, 30, tzinfo=UTC)  # Monday
        assert due["thesis.submit_trainees"] == datetime(2026, 10, 5, 22, 30, tzinfo=UTC)


async def test_each_system_decides_as_its_own_settings_say(state_dir: Path) -> None:
    async with record_line(state_dir, ["publish", "apply", "sits", "banner"]) as line:
        # the same draw offers at both (below both shares), or rejects at SITS alone
        offered_at_sits, offered_at_banner = ids_drawn(2, below=0.6)
        (rejected_at_sits,) = ids_drawn(1, at_least=0.75)
        courses = await courses_in_apply(line, UNIVERSITY["sits"], UNIVERSITY["banner"])
        for id, code in (
            (offered_at_sits, "1UR"),
            (rejected_at_sits, "1UR"),
            (offered_at_banner, "1AB"),
        ):
            await apply_to(line, courses[code], id=id)

        # Banner copies at 01:00 and decides a day later; SITS copies at 00:15, decides in two
        await advance(line, timedelta(days=1, hours=1, minutes=9))
        assert (await in_apply(line, offered_at_banner))["status"] == "awaiting_provider_decision"
        ran = await advance(line, timedelta(days=1, hours=1, minutes=10))
        assert ran[("banner", "banner.decide")] == [{"offered": 1, "failed": {}}]
        offer = (await in_apply(line, offered_at_banner))["offer"]
        assert offer["conditions"] == ["Enhanced DBS check"]
        assert (await in_apply(line, offered_at_sits))["status"] == "awaiting_provider_decision"

        ran = await advance(line, timedelta(days=2, minutes=20))
        assert ran[("sits", "sits.decide")][-1] == {"offered": 1, "rejected": 1, "failed": {}}
        offer = (await in_apply(line, offered_at_sits))["offer"]
        assert offer["conditions"] == ["Enhanced DBS check", "Fitness to teach"]
        rejection = (await in_apply(line, rejected_at_sits))["rejection"]
        assert rejection["reason"] in SitsSettings().rejection_reasons


async def test_universities_set_themselves_up_in_their_system(state_dir: Path) -> None:
    async with record_line(state_dir, ["oracle"]) as line:
        oracle = line["oracle"]
        warwick = builders.institution(UNIVERSITY["oracle"])
        answered(await oracle.post("/institutions/batch", json=[warwick]), 401)
        bad = await oracle.post(
            "/institutions/batch", json=[{**warwick, "ukprn": "1234"}], headers=API
        )
        assert bad.status_code == 422
        assert names_field(bad, "ukprn")
        body = [warwick, builders.institution("U09", ukprn="10007158", name="Lincoln")]
        assert answered(await oracle.post("/institutions/batch", json=body, headers=API)) == {
            "set_up": 2
        }
        moved = {**warwick, "ukprn": "10007999"}
        answered(await oracle.post("/institutions/batch", json=[moved], headers=API))
        listed = answered(await oracle.get("/institutions"))
        assert [(i["provider_code"], i["ukprn"]) for i in listed] == [
            ("U02", "10007999"),
            ("U09", "10007158"),
        ]
        assert moment(listed[0]["set_up_at"]) == START
        missing = await oracle.get("/institutions/XYZ")
        assert missing.status_code == 404
        assert names_field(missing, "provider_code")


async def test_the_fast_clock_moves_record_systems_as_asking_every_time_does(
    tmp_path: Path,
) -> None:
    """Between decisions due days apart, the fast clock passes over the idle decision runs and
    the copies known to find nothing, and every job still runs as polling every time runs it."""
    names = ["publish", "apply", "sits", "banner"]
    outcomes = []
    for skip in (False, True):
        state_dir = tmp_path / ("fast" if skip else "slow")
        state_dir.mkdir()
        settings = {name: {"skip_quiet_polls": skip} for name in names}
        async with record_line(state_dir, names, settings) as line:
            courses = await courses_in_apply(line, UNIVERSITY["sits"], UNIVERSITY["banner"])
            ids = ids_drawn(4)
            for id, code in zip(ids, ("1UR", "1UR", "1AB", "1AB"), strict=True):
                await apply_to(line, courses[code], id=id)
            calls = line.control.calls
            ran = await line.control.advance(to=START + timedelta(days=3))
            # each service's runs in the order it ran them
            runs = sorted(
                ((job["service"], job["job"], job["due_at"], _told(job["result"])) for job in ran),
                key=lambda run: run[0],
            )
            applications = [await in_apply(line, id) for id in ids]
            outcomes.append((runs, applications, line.control.calls - calls))
    (slow_runs, slow_applications, slow_calls), (fast_runs, fast_applications, fast_calls) = (
        outcomes
    )
    assert [status["status"] for status in fast_applications].count("offer") >= 2
    assert fast_runs == slow_runs
    assert fast_applications == slow_applications
    # each system's clock moved on from one decision to the next, not a quarter hour at a time
    assert fast_calls < slow_calls / 2, (fast_calls, slow_calls)


def _told(result: Any) -> Any:
    """A job's result, less what only a skip changes: that it was skipped, its log's id."""
    if not isinstance(result, dict):
        return result
    return {key: value for key, value in result.items() if key not in {"skipped", "run_id"}}
