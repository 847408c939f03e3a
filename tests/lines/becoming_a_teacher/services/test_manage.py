"""Manage: a copy of Apply's applications, decisions sent back as vendor API commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from serviceline.testing import API, AUDITOR, LineUnderTest, in_process_line
from tests import builders

pytestmark = pytest.mark.anyio

LINE = ["publish", "apply", "manage"]
TO_MANAGE = "apply.application.manage"


def answered(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


async def applied(line: LineUnderTest) -> str:
    """A course in Publish, copied to Apply; a candidate applies; Manage copies the application."""
    publish, apply = line["publish"], line["apply"]
    answered(await publish.post("/providers", json=builders.provider(), headers=API), 201)
    answered(await publish.post("/providers/2FR/sites", json=builders.site(), headers=API), 201)
    course = answered(
        await publish.post("/providers/2FR/courses", json=builders.course(), headers=API), 201
    )
    await line.control.sync()
    candidate = answered(
        await apply.post("/candidates", json=builders.candidate(), headers=API), 201
    )
    body = builders.application(candidate["id"], course["uuid"])
    application = answered(await apply.post("/applications", json=body, headers=API), 201)
    await line.control.run_edge(TO_MANAGE)
    id: str = application["id"]
    return id


async def manage_status(line: LineUnderTest, id: str) -> str:
    view = answered(await line["manage"].get(f"/applications/{id}", headers=API))
    status: str = view["application"]["status"]
    return status


async def apply_status(line: LineUnderTest, id: str) -> str:
    status: str = answered(await line["apply"].get(f"/applications/{id}", headers=API))["status"]
    return status


async def test_decision_reaches_apply_at_once_and_manage_copy_at_its_sync(
    state_dir: Path,
) -> None:
    async with in_process_line(LINE, state_dir) as line:
        id = await applied(line)
        listed = answered(
            await line["manage"].get("/applications", params={"provider_code": "2FR"}, headers=API)
        )
        assert [a["id"] for a in listed] == [id]
        assert (
            answered(
                await line["manage"].get(
                    "/applications", params={"provider_code": "1UR"}, headers=API
                )
            )
            == []
        )
        assert await manage_status(line, id) == "awaiting_provider_decision"

        offer = {"conditions": ["Fitness to teach check"], "user": builders.provider_user()}
        answer = answered(
            await line["manage"].post(f"/applications/{id}/offer", json=offer, headers=API)
        )
        assert answer["data"]["attributes"]["status"] == "offer"  # Apply's own answer
        assert answer["data"]["attributes"]["offer"]["conditions"] == ["Fitness to teach check"]
        assert await apply_status(line, id) == "offer"
        assert await manage_status(line, id) == "awaiting_provider_decision"

        stats = (await line.control.run_edge(TO_MANAGE))["result"]
        assert stats["upserted"] == 1
        assert await manage_status(line, id) == "offer"

        answered(await line["apply"].post(f"/applications/{id}/accept-offer", headers=API))
        met = {"user": builders.provider_user()}
        answer = answered(
            await line["manage"].post(
                f"/applications/{id}/confirm-conditions-met", json=met, headers=API
            )
        )
        assert answer["data"]["attributes"]["status"] == "recruited"
        await line.control.advance(by="5m")  # the edge's own schedule: every 5 minutes
        copy = answered(await line["manage"].get(f"/applications/{id}", headers=API))["application"]
        assert copy["status"] == "recruited"
        assert copy["recruited_at"] is not None


async def test_apply_refusals_reach_the_provider_user(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        id = await applied(line)
        reject = {"reason": "Course full", "user": builders.provider_user()}
        rejected = answered(
            await line["manage"].post(f"/applications/{id}/reject", json=reject, headers=API)
        )
        assert rejected["data"]["attributes"]["rejection"]["reason"] == "Course full"

        met = {"user": builders.provider_user()}
        refused = await line["manage"].post(
            f"/applications/{id}/confirm-conditions-met", json=met, headers=API
        )
        assert refused.status_code == 422, refused.text
        assert "apply" in refused.text
        assert "'rejected'" in refused.text
        unknown = await line["manage"].post(
            "/applications/ffffffffff/reject", json=reject, headers=API
        )
        assert unknown.status_code == 404, unknown.text
        bad_id = await line["manage"].post("/applications/..x/reject", json=reject, headers=API)
        assert bad_id.status_code == 422
        assert "id" in bad_id.text
        no_user = await line["manage"].post(
            f"/applications/{id}/offer", json={"conditions": []}, headers=API
        )
        assert no_user.status_code == 422
        assert "user" in no_user.text


async def test_manage_with_a_wrong_vendor_token_gets_a_bad_gateway(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        id = await applied(line)
    # the same line again, Manage now holding a token Apply does not know
    async with in_process_line(LINE, state_dir, upstream_tokens={"apply": "guessed"}) as line:
        offer = {"conditions": [], "user": builders.provider_user()}
        response = await line["manage"].post(f"/applications/{id}/offer", json=offer, headers=API)
        assert response.status_code == 502, response.text
        assert "apply answered 403" in response.text
        assert await apply_status(line, id) == "awaiting_provider_decision"
        refused = await line["manage"].post(f"/applications/{id}/offer", json=offer)
        assert refused.status_code == 401


async def test_notes_stay_in_manage(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        id = await applied(line)
        before = answered(await line["apply"].get(f"/applications/{id}", headers=API))
        head = answered(await line["apply"].get("/feed/application", headers=AUDITOR))["next"]

        note = {"text": "Strong subject knowledge; invite to interview", "author": "Jane Smith"}
        created = answered(
            await line["manage"].post(f"/applications/{id}/notes", json=note, headers=API), 201
        )
        assert created["created_at"].startswith("2026-10-05")
        await line.control.sync()

        view = answered(await line["manage"].get(f"/applications/{id}", headers=API))
        assert [n["text"] for n in view["notes"]] == [note["text"]]
        assert view["application"]["local_edits"] == []
        after = answered(await line["apply"].get(f"/applications/{id}", headers=API))
        assert after == before
        assert "note" not in str(after).lower()
        feed = answered(
            await line["apply"].get("/feed/application", params={"since": head}, headers=AUDITOR)
        )
        assert feed["changes"] == []
        missing = await line["manage"].post(
            "/applications/ffffffffff/notes", json=note, headers=API
        )
        assert missing.status_code == 404
        assert "sync" in missing.text


async def test_manage_copy_refuses_writes_naming_apply(state_dir: Path) -> None:
    async with in_process_line(LINE, state_dir) as line:
        id = await applied(line)
        for method, path in (
            ("POST", "/copies/application"),
            ("PATCH", f"/copies/application/{id}"),
            ("PUT", f"/copies/application/{id}"),
            ("DELETE", f"/copies/application/{id}"),
        ):
            response = await line["manage"].request(
                method, path, json={"status": "recruited"}, headers=API
            )
            assert response.status_code == 403, response.text
            assert "owned by apply" in response.text
        assert await manage_status(line, id) == "awaiting_provider_decision"


async def test_partnerships_are_recorded_in_manage_alone(state_dir: Path) -> None:
    async with in_process_line(["publish", "manage"], state_dir) as line:
        manage = line["manage"]
        pair = {"accredited_provider_code": "2FR", "lead_partner_code": "1UR"}
        made = answered(await manage.post("/partnerships", json=pair, headers=API), 201)
        assert (made["accredited_provider_code"], made["lead_partner_code"]) == ("2FR", "1UR")
        assert answered(await manage.post("/partnerships", json=pair, headers=API), 409)
        same = {"accredited_provider_code": "2FR", "lead_partner_code": "2FR"}
        assert "lead_partner_code" in str(
            answered(await manage.post("/partnerships", json=same, headers=API), 422)
        )
        bad = {"accredited_provider_code": "2fr!", "lead_partner_code": "1UR"}
        assert "accredited_provider_code" in str(
            answered(await manage.post("/partnerships", json=bad, headers=API), 422)
        )
        listed = answered(await manage.get("/partnerships", headers=API))
        assert [(p["accredited_provider_code"], p["lead_partner_code"]) for p in listed] == [
            ("2FR", "1UR")
        ]
        assert answered(await line["publish"].get("/partnerships", headers=API)) == []
