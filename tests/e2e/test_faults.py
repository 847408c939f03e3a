"""Faults over real processes: a consumer killed mid-batch, an owner stopped and started again."""

import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio import to_thread

from lines.becoming_a_teacher.topology import LINE
from serviceline.stack.launcher import LineConfig, RunningLine, start_line
from serviceline.testing import ADMIN, ADMIN_TOKEN, API, API_TOKEN
from tests import builders

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PROVIDERS = "publish.provider.find"
CODES = ["1AA", "1BB", "1CC", "1DD", "1EE"]


@pytest.fixture
async def line(tmp_path: Path, port_offset: int) -> AsyncIterator[RunningLine]:
    config = LineConfig(
        tmp_path,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        port_offset=port_offset,
        service_settings={"find": {"read_through": "true", "page_size": "2"}},
    )
    running = await to_thread.run_sync(
        functools.partial(start_line, topology=LINE), config, ["publish", "find"]
    )
    try:
        yield running
    finally:
        await to_thread.run_sync(running.stop)


async def answered(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json() if response.content else None


async def test_a_consumer_killed_mid_batch_restarts_with_nothing_half_applied(
    line: RunningLine,
) -> None:
    urls = line.urls()
    async with (
        httpx.AsyncClient(base_url=urls["publish"], timeout=30) as publish,
        httpx.AsyncClient(base_url=urls["find"], timeout=30) as find,
    ):
        providers = [builders.provider(code, name=f"Provider {code}") for code in CODES]
        await answered(await publish.post("/providers/batch", json=providers, headers=API))
        die = {"kind": "die_mid_batch", "edge": PROVIDERS, "times": 1}
        await answered(await find.post("/admin/faults", json=die, headers=ADMIN))

        with pytest.raises(httpx.TransportError):
            await find.post("/admin/edges/publish/provider/run", headers=ADMIN)
        await to_thread.run_sync(line.wait_exited, "find")
        assert set(line.exited()) == {"find"}

        await to_thread.run_sync(line.start_service, "find")
        # its first page was written but not committed when it died: none of it stayed
        assert (await answered(await find.get("/copies/provider")))["copies"] == []
        [edge] = await answered(await find.get("/admin/edges", headers=ADMIN))
        assert (edge["edge"], edge["position"], edge["copies"]) == (PROVIDERS, None, 0)
        assert await answered(await find.get("/admin/faults", headers=ADMIN)) == []

        ran = await answered(await find.post("/admin/edges/publish/provider/run", headers=ADMIN))
        assert (ran["result"]["pages"], ran["result"]["upserted"]) == (3, len(CODES))
        copied = (await answered(await find.get("/copies/provider")))["copies"]
        owned = (await answered(await publish.get("/records/provider")))["records"]
        assert [(c["code"], c["name"], c["source_version"]) for c in copied] == [
            (r["code"], r["name"], r["version"]) for r in owned
        ]


async def test_find_reading_through_is_down_exactly_while_publish_is(line: RunningLine) -> None:
    urls = line.urls()
    async with httpx.AsyncClient(base_url=urls["find"], timeout=30) as find:
        assert (await answered(await find.get("/courses")))["total"] == 0

        await to_thread.run_sync(lambda: line.stop_service("publish", kill=True))
        assert "publish" not in line.urls()
        down = await find.get("/courses")
        assert down.status_code == 503
        assert "Find reads courses live from Publish" in down.json()["detail"]

        await to_thread.run_sync(line.start_service, "publish")
        assert (await answered(await find.get("/courses")))["total"] == 0
