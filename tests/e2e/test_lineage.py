"""A simulated day of a native line's OpenLineage events, in a file, against its topology."""

import contextlib
import functools
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio import to_thread
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import SQLModel

from lines.becoming_a_teacher.seed import seed_line
from lines.becoming_a_teacher.services.apply import models as apply
from lines.becoming_a_teacher.services.find import models as find
from lines.becoming_a_teacher.services.publish.models import GiasSchool
from lines.becoming_a_teacher.topology import LINE
from serviceline.runtime.settings import CLOCK_START
from serviceline.stack.control import LineControl
from serviceline.stack.launcher import LineConfig, RunningLine, start_line
from serviceline.testing import ADMIN_TOKEN, API, API_TOKEN, AUDITOR_TOKEN
from tests import builders
from tests.openlineage_spec import events_in

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
OUTCOMES = {"COMPLETE": "finished", "FAIL": "failed"}
NAMES = ["gias", "publish", "find", "apply"]
# the copy table each consumer keeps an edge's records in
COPIES: dict[str, type[SQLModel]] = {
    "gias.school.publish": GiasSchool,
    "publish.provider.find": find.ProviderCopy,
    "publish.course.find": find.CourseCopy,
    "publish.provider.apply": apply.ProviderCopy,
    "publish.course.apply": apply.CourseCopy,
    "publish.site.apply": apply.SiteCopy,
}


@contextlib.asynccontextmanager
async def line_with_lineage(
    tmp_path: Path, port_offset: int, lineage_file: Path, names: list[str]
) -> AsyncIterator[tuple[RunningLine, dict[str, httpx.AsyncClient]]]:
    config = LineConfig(
        tmp_path / "state",
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        auditor_token=AUDITOR_TOKEN,
        port_offset=port_offset,
        lineage_file=lineage_file,
    )
    line = await to_thread.run_sync(functools.partial(start_line, topology=LINE), config, names)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(base_url=config.url(LINE.service(name)), timeout=60)
                )
                for name in names
            }
            yield line, clients
    finally:
        await to_thread.run_sync(line.stop)


async def logged_runs(clients: dict[str, httpx.AsyncClient]) -> Counter[tuple[str, str]]:
    """Each edge's runs by outcome (finished, failed), as its consumer's /metrics counts them
    from its own log of runs."""
    runs: Counter[tuple[str, str]] = Counter()
    for client in clients.values():
        text = (await client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "serviceline_copy_runs_total" and sample.value:
                    runs[(sample.labels["edge"], sample.labels["outcome"])] += int(sample.value)
    return runs


async def test_a_day_of_lineage_describes_exactly_the_edges_of_the_started_services(
    tmp_path: Path, port_offset: int
) -> None:
    path = tmp_path / "lineage" / "events.jsonl"
    async with line_with_lineage(tmp_path, port_offset, path, NAMES) as (line, clients):
        for body, where in (
            (builders.provider(), "/providers"),
            (builders.site(), "/providers/2FR/sites"),
            (builders.course(), "/providers/2FR/courses"),
        ):
            made = await clients["publish"].post(where, json=body, headers=API)
            assert made.is_success, made.text
        control = LineControl(clients, ADMIN_TOKEN, LINE)
        await control.advance(by="1d")
        runs = await logged_runs(clients)
        edges = {edge.name: edge for edge in line.topology.edges if edge.consumer in NAMES}
    # stopped: each service has sent what was still on its way

    assert {edge.owner for edge in edges.values()} <= set(NAMES)
    assert set(edges) == set(COPIES)
    events = events_in(path)  # every one checked against the spec
    assert {event["job"]["name"] for event in events} == set(edges)
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_run[event["run"]["runId"]].append(event)
    ended: Counter[tuple[str, str]] = Counter()
    written: Counter[str] = Counter()
    for run in by_run.values():
        start, end = run
        assert start["eventType"] == "START"
        assert end["eventType"] in ("COMPLETE", "FAIL")
        assert start["job"] == end["job"]
        edge = edges[start["job"]["name"]]
        ended[(edge.name, OUTCOMES[end["eventType"]])] += 1
        if end["eventType"] == "COMPLETE":
            written[edge.name] += end["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"]
        for event in run:
            at = datetime.fromisoformat(event["eventTime"])
            assert CLOCK_START <= at <= CLOCK_START + timedelta(days=1)
            assert event["job"]["namespace"] == "serviceline"
            assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
                (f"serviceline://{edge.owner}", edge.entity)
            ]
            (output,) = event["outputs"]
            table = str(COPIES[edge.name].__tablename__)
            assert (output["namespace"], output["name"]) == (
                f"serviceline://{edge.consumer}",
                table,
            )
            lineage = output["facets"]["columnLineage"]["fields"]
            assert {
                column: [f["field"] for f in lineage[column]["inputFields"]] for column in lineage
            } == {column: [source] for source, column in edge.mapping.items()}
        assert start["eventTime"] <= end["eventTime"]
    # a START and a COMPLETE or FAIL for every run each consumer logged, skipped polls included
    assert ended == runs
    assert ended[("publish.course.find", "finished")] == 24 * 12
    assert ended[("publish.site.apply", "finished")] == 24 * 6
    # on the line's first day GIAS has published no file of the day before: Publish's 02:30
    # import fails, and so do its retries
    assert ended[("gias.school.publish", "failed")] > 1
    assert ("gias.school.publish", "finished") not in ended
    failure = next(e for e in events if e["eventType"] == "FAIL")
    assert "no edubasealldata file" in failure["run"]["facets"]["errorMessage"]["message"]
    # what each copy took in, once: the provider, its site and its course
    assert written == {edge: 1 for edge in edges if edge.startswith("publish.")}


def runs_in(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The events by run, each run a START and then a COMPLETE or FAIL of the same job."""
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_run[event["run"]["runId"]].append(event)
    for start, end in by_run.values():
        assert (start["eventType"], start["job"]) == ("START", end["job"])
        assert end["eventType"] in OUTCOMES
    return by_run


async def test_a_seeded_day_of_the_whole_line_tells_of_every_edge_of_its_topology(
    tmp_path: Path, port_offset: int
) -> None:
    path = tmp_path / "lineage" / "events.jsonl"
    names = [service.name for service in LINE.services]
    async with line_with_lineage(tmp_path, port_offset, path, names) as (line, clients):
        control = LineControl(clients, ADMIN_TOKEN, LINE)
        counts = await seed_line(clients, control, API_TOKEN, seed=5)
        assert counts["trainees"] > 0  # each waiting for its TRN: Register polls DQT for it
        await control.advance(by="1d")
        runs = await logged_runs(clients)
        copied = (
            await clients["register"].get("/copies/teacher", params={"limit": 5000}, headers=API)
        ).json()
    assert copied["copies"]
    assert copied["next_after"] is None
    events = events_in(path)
    by_run = runs_in(events)
    # every edge, the one Register's TRN polls write by themselves included
    assert {run[0]["job"]["name"] for run in by_run.values()} == {
        edge.name for edge in line.topology.edges
    }
    ended = Counter(
        (start["job"]["name"], OUTCOMES[end["eventType"]]) for start, end in by_run.values()
    )
    assert ended == runs
    received = [
        end["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"]
        for start, end in by_run.values()
        if start["job"]["name"] == "dqt.teacher.register" and end["eventType"] == "COMPLETE"
    ]
    assert sum(received) == len(copied["copies"])  # each person copied once, with its TRN
