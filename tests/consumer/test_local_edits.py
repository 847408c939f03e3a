"""Local edits to a copy: allowed only where the real services allow them, and each one counted."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lines.becoming_a_teacher.services.find.models import CourseCopy, ProviderCopy
from lines.becoming_a_teacher.topology import LINE
from serviceline.consumer.tables import CopyTarget
from serviceline.model.topology import Policy, Topology
from serviceline.runtime.app import create_app
from serviceline.stack.control import LineControl
from serviceline.testing import (
    ADMIN,
    ADMIN_TOKEN,
    API,
    LineUnderTest,
    in_process_line,
    names_field,
    service_app,
    service_settings,
)
from tests import builders

pytestmark = pytest.mark.anyio

CONTACT = {"telephone": "020 7946 0001", "website": "https://aldgate.example", "town": "London"}
# Find's course copy, as it would be if Find kept its own course names whatever Publish says
LOCAL_NAMES = Topology(
    LINE.services,
    LINE.entities,
    LINE.relationships,
    (
        LINE.edge("publish.provider.find"),
        dataclasses.replace(
            LINE.edge("publish.course.find"),
            policy=Policy.LOCAL_WINS,
            editable=frozenset({"name"}),
        ),
    ),
    (),
)
FIND_COURSES = "publish.course.find"


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def answered(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def edge_view(client: httpx.AsyncClient, edge: str) -> dict[str, Any]:
    views = answered(await client.get("/admin/edges", headers=ADMIN))
    view: dict[str, Any] = next(v for v in views if v["edge"] == edge)
    return view


def ran(results: list[dict[str, Any]], job: str) -> dict[str, Any]:
    """The result of the one run of `job` among an advance's runs."""
    runs = [r for r in results if r["job"] == job]
    assert len(runs) == 1, results
    assert runs[0]["ok"], runs[0]
    result: dict[str, Any] = runs[0]["result"]
    return result


@pytest.mark.parametrize("service", ["placements", "claims"])
async def test_a_schools_contact_details_last_until_the_nightly_gias_import(
    service: str, state_dir: Path
) -> None:
    names = ["gias", "publish", "dqt", service]
    edge = f"gias.school.{service}"
    async with in_process_line(names, state_dir) as line:
        school = builders.school("100000", telephone="020 7000 0000")
        answered(await line["gias"].post("/schools/batch", json=[school], headers=API), 201)
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge(edge)
        copies = line[service]

        edited = answered(await copies.patch("/copies/school/100000", json=CONTACT, headers=API))
        assert {k: edited[k] for k in CONTACT} == CONTACT
        assert edited["local_edits"] == ["telephone", "town", "website"]
        assert (await copies.patch("/copies/school/100000", json=CONTACT)).status_code == 401

        await line.control.advance(to=at(5, 23))
        kept = await line.copy_of(service, "school", "100000")
        assert {k: kept[k] for k in CONTACT} == CONTACT

        # GIAS still says what it said: the import writes it over the school's own details
        results = await line.control.advance(to=at(5, 23, 30))
        assert ran(results, edge)["lost_local_edits"] == 2
        lost = await line.copy_of(service, "school", "100000")
        assert (lost["telephone"], lost["website"], lost["town"]) == (
            "020 7000 0000",
            None,
            "London",
        )
        # the town the school gave is GIAS's own: nothing lost, and still the school's edit
        assert lost["local_edits"] == ["town"]
        again = await line.control.run_edge(edge)
        assert again["result"]["lost_local_edits"] == 0
        view = await edge_view(copies, edge)
        assert (view["policy"], view["lost_local_edits"], view["withheld_owner_changes"]) == (
            "owner_wins",
            2,
            0,
        )
        assert view["editable"] == ["address1", "postcode", "telephone", "town", "website"]

    async with in_process_line(names, state_dir) as line:
        assert (await edge_view(line[service], edge))["lost_local_edits"] == 2


async def test_only_the_editable_columns_of_a_copy_change_and_only_to_valid_values(
    state_dir: Path,
) -> None:
    async with in_process_line(["gias", "publish", "dqt", "placements"], state_dir) as line:
        school = builders.school("100000")
        answered(await line["gias"].post("/schools/batch", json=[school], headers=API), 201)
        await line.control.run_job("gias", "gias.daily_extract")
        await line.control.run_edge("gias.school.placements")
        placements = line["placements"]

        for body in ({"name": "Aldgate Primary"}, {"telephone": "020 7946 0001", "phase": "x"}):
            refused = await placements.patch("/copies/school/100000", json=body, headers=API)
            assert refused.status_code == 403, refused.text
            assert "owned by gias" in refused.json()["detail"]
        bad = await placements.patch("/copies/school/100000", json={"telephone": 5}, headers=API)
        assert bad.status_code == 422, bad.text
        assert names_field(bad, "telephone")
        missing = await placements.patch("/copies/school/999999", json=CONTACT, headers=API)
        assert missing.status_code == 404, missing.text

        untouched = await line.copy_of("placements", "school", "100000")
        assert (untouched["name"], untouched["telephone"], untouched["local_edits"]) == (
            "The Aldgate School",
            None,
            [],
        )
        # Publish's copy of the same school has no editable columns at all
        publish = await line["publish"].patch(
            "/copies/school/100000", json={"telephone": "020 7946 0001"}, headers=API
        )
        assert publish.status_code == 403, publish.text


@contextlib.asynccontextmanager
async def local_names_line(state_dir: Path) -> AsyncIterator[LineUnderTest]:
    """Publish, and a Find whose course names are its own once it edits them (LOCAL_NAMES)."""
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    apps: dict[str, FastAPI] = {
        "publish": service_app("publish", service_settings("publish", state_dir), transports),
        "find": create_app(
            "find",
            service_settings("find", state_dir),
            copies={"provider": CopyTarget(ProviderCopy), "course": CopyTarget(CourseCopy)},
            transports=transports,
            topology=LOCAL_NAMES,
        ),
    }
    transports.update({name: httpx.ASGITransport(app=app) for name, app in apps.items()})
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=transports[name], base_url=f"http://{name}")
            )
            for name in apps
        }
        yield LineUnderTest(clients, LineControl(clients, ADMIN_TOKEN, topology=LOCAL_NAMES))


async def test_a_local_wins_copy_keeps_its_edit_and_counts_each_owner_change_withheld(
    state_dir: Path,
) -> None:
    async with local_names_line(state_dir) as line:
        await builders.publish_provider(line, builders.provider(), builders.site())
        created = await line["publish"].post(
            "/providers/2FR/courses", json=builders.course(), headers=API
        )
        uuid = answered(created, 201)["uuid"]
        await line.control.run_edge(FIND_COURSES)
        find, publish = line["find"], line["publish"]
        path = f"/copies/course/{uuid}"

        assert (await find.patch(path, json={"code": "ZZZZ"}, headers=API)).status_code == 403
        null = await find.patch(path, json={"name": None}, headers=API)
        assert null.status_code == 422, null.text
        assert names_field(null, "name")
        answered(await find.patch(path, json={"name": "Art (Find)"}, headers=API))

        renamed = {"name": "Art", "age_maximum": 18}
        answered(await publish.patch(f"/courses/{uuid}", json=renamed, headers=API))
        first = await line.control.run_edge(FIND_COURSES)
        assert first["result"]["withheld_owner_changes"] == 1
        copy = await line.copy_of("find", "course", uuid)
        assert (copy["name"], copy["age_maximum"], copy["local_edits"]) == (
            "Art (Find)",
            18,
            ["name"],
        )

        answered(await publish.patch(f"/courses/{uuid}", json={"name": "Fine Art"}, headers=API))
        second = await line.control.run_edge(FIND_COURSES)
        assert second["result"]["withheld_owner_changes"] == 1
        # nothing new from the owner: nothing more withheld
        assert (await line.control.run_edge(FIND_COURSES))["result"]["withheld_owner_changes"] == 0
        assert (await line.copy_of("find", "course", uuid))["name"] == "Art (Find)"
        # synced, and still apart: diverged, not stale, and it stays so
        audit = line.auditor()
        drift = await audit.edge(LOCAL_NAMES.edge(FIND_COURSES))
        assert (drift.counts["diverged"], drift.counts["stale"]) == (1, 0)
        (difference,) = drift.keys[0].differences
        assert (difference.field, difference.values) == (
            "name",
            {"publish": "Fine Art", "find": "Art (Find)"},
        )
        view = await edge_view(find, FIND_COURSES)
        assert (view["policy"], view["withheld_owner_changes"], view["lost_local_edits"]) == (
            "local_wins",
            2,
            0,
        )

    async with local_names_line(state_dir) as line:
        assert (await edge_view(line["find"], FIND_COURSES))["withheld_owner_changes"] == 2
        assert (await line.copy_of("find", "course", uuid))["name"] == "Art (Find)"
