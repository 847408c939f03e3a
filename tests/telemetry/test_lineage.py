"""OpenLineage: every copy run's START and COMPLETE or FAIL, with the edge's datasets and facets."""

import contextlib
import http.server
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from lines.becoming_a_teacher.services.find.models import CourseCopy, ProviderCopy
from lines.becoming_a_teacher.topology import LINE
from serviceline.consumer.copier import Copier
from serviceline.consumer.tables import COPIER_TABLES, CopyTarget
from serviceline.runtime.clock import SimulatedClock
from serviceline.runtime.db import create_tables, make_engine
from serviceline.runtime.settings import CLOCK_START, ClockMode, ServiceSettings
from serviceline.runtime.upstream import Upstream, UpstreamError
from serviceline.telemetry.lineage import (
    MARQUEZ_ENDPOINT,
    Lineage,
    column_lineage,
    file_transport,
    http_transport,
    lineage_for,
)
from serviceline.testing import database_url, in_process_line
from tests import builders
from tests.openlineage_spec import NotInSpecError, conforms, events_in

pytestmark = pytest.mark.anyio

FIND_COURSES = LINE.edge("publish.course.find")
FIND_TARGETS = {"provider": CopyTarget(ProviderCopy), "course": CopyTarget(CourseCopy)}
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


@contextlib.asynccontextmanager
async def find_copier(state_dir: Path, handler: Handler, lineage: Lineage) -> AsyncIterator[Copier]:
    """Find's copier on its own database, reading Publish through `handler`, with lineage."""
    engine = make_engine(database_url(state_dir, "find-copies"))
    create_tables(engine, [*COPIER_TABLES, CourseCopy, ProviderCopy])
    upstream = Upstream.connect("publish", "http://publish", transport=httpx.MockTransport(handler))
    clock = SimulatedClock(ClockMode.MANUAL, CLOCK_START)
    try:
        yield Copier(
            service="find",
            topology=LINE,
            engine=engine,
            clock=clock,
            upstreams={"publish": upstream},
            targets=FIND_TARGETS,
            year=2027,
            page_size=500,
            lineage=lineage,
        )
    finally:
        lineage.close()
        await upstream.aclose()
        engine.dispose()


async def test_a_run_sends_start_then_complete_naming_the_edge_its_owner_and_its_copy(
    state_dir: Path, tmp_path: Path
) -> None:
    async with in_process_line(["publish"], state_dir) as line:
        await builders.publish_course(line, builders.provider(), builders.course(), builders.site())

        async def forward(request: httpx.Request) -> httpx.Response:
            answer = await line["publish"].get(request.url.path, params=request.url.params)
            return httpx.Response(answer.status_code, content=answer.content)

        path = tmp_path / "lineage.jsonl"
        lineage = Lineage([file_transport(path)], "serviceline")
        async with find_copier(state_dir, forward, lineage) as copier:
            stats = await copier.run(FIND_COURSES.name)
            lineage.flush()
    assert stats.upserted == 1

    start, complete = events_in(path)
    assert [start["eventType"], complete["eventType"]] == ["START", "COMPLETE"]
    run_id = uuid.UUID(start["run"]["runId"])
    assert run_id.version == 7  # the spec's recommendation
    assert complete["run"]["runId"] == start["run"]["runId"]
    # stamped on the simulated clock, as the run's own log is
    assert start["eventTime"] == complete["eventTime"] == CLOCK_START.isoformat()
    assert start["run"]["facets"]["nominalTime"]["nominalStartTime"] == CLOCK_START.isoformat()
    for event in (start, complete):
        assert event["job"]["namespace"] == "serviceline"
        assert event["job"]["name"] == "publish.course.find"
        assert event["job"]["facets"]["jobType"]["jobType"] == "COPY_FEED"
        (source,) = event["inputs"]
        assert (source["namespace"], source["name"]) == ("serviceline://publish", "course")
        read = {field["name"] for field in source["facets"]["schema"]["fields"]}
        assert read == set(FIND_COURSES.mapping)
        (copy,) = event["outputs"]
        assert (copy["namespace"], copy["name"]) == ("serviceline://find", "find_course")
        schema = copy["facets"]["schema"]["fields"]
        assert [f["name"] for f in schema] == [c.name for c in inspect(CourseCopy).columns]
        assert {f["name"]: f["type"] for f in schema}["age_minimum"] == "INTEGER"
        lineage_fields = copy["facets"]["columnLineage"]["fields"]
        assert set(lineage_fields) == set(FIND_COURSES.mapping.values())
        for column, (owner_field,) in (
            (c, lineage_fields[c]["inputFields"]) for c in FIND_COURSES.mapping.values()
        ):
            assert owner_field["namespace"] == "serviceline://publish"
            assert owner_field["name"] == "course"
            assert FIND_COURSES.mapping[owner_field["field"]] == column
            assert owner_field["transformations"] == [{"type": "DIRECT", "subtype": "IDENTITY"}]
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 1
    assert "outputFacets" not in start["outputs"][0] or not start["outputs"][0]["outputFacets"]


async def test_a_run_whose_owner_fails_sends_fail_with_the_error(
    state_dir: Path, tmp_path: Path
) -> None:
    async def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="Publish is down")

    path = tmp_path / "lineage.jsonl"
    lineage = Lineage([file_transport(path)], "serviceline")
    async with find_copier(state_dir, unavailable, lineage) as copier:
        with pytest.raises(UpstreamError):
            await copier.run(FIND_COURSES.name)
        lineage.flush()

    start, fail = events_in(path)
    assert [start["eventType"], fail["eventType"]] == ["START", "FAIL"]
    assert fail["run"]["runId"] == start["run"]["runId"]
    error = fail["run"]["facets"]["errorMessage"]
    assert "503" in error["message"]
    assert error["programmingLanguage"] == "python"
    assert "UpstreamError" in error["stackTrace"]
    assert fail["outputs"][0]["name"] == "find_course"
    assert "outputStatistics" not in fail["outputs"][0].get("outputFacets", {})


async def test_a_poll_skipped_for_its_known_answer_sends_what_a_made_poll_sends(
    tmp_path: Path,
) -> None:
    sent: dict[bool, list[dict[str, Any]]] = {}
    for skip in (True, False):
        path = tmp_path / f"lineage-{skip}.jsonl"
        state = tmp_path / f"state-{skip}"
        state.mkdir()
        async with in_process_line(
            ["publish", "find"], state, lineage_file=path, skip_quiet_polls=skip
        ) as line:
            await builders.publish_course(
                line, builders.provider(), builders.course(), builders.site()
            )
            ran = await line.control.advance(by="30m")
        skipped = [job for job in ran if job["result"] and job["result"].get("skipped")]
        assert bool(skipped) is skip  # the quiet polls after the first were not made
        sent[skip] = [_without_run_id(event) for event in events_in(path)]
    assert sent[True] == sent[False]
    assert len(sent[True]) == 2 * 2 * 6  # two edges, every 5 minutes, START and COMPLETE each


def _without_run_id(event: dict[str, Any]) -> dict[str, Any]:
    uuid.UUID(event["run"].pop("runId"))
    return event


def test_the_column_lineage_says_which_values_are_mapped_and_which_records_are_copied() -> None:
    edge = LINE.edge("publish.course.apply")
    facet = conforms_facet(column_lineage(edge))
    (withdrawn,) = facet["fields"]["withdrawn"]["inputFields"]
    assert withdrawn["field"] == "state"
    (mapped,) = withdrawn["transformations"]
    assert (mapped["type"], mapped["subtype"]) == ("DIRECT", "TRANSFORMATION")
    (name,) = facet["fields"]["name"]["inputFields"]
    assert name["transformations"] == [{"type": "DIRECT", "subtype": "IDENTITY"}]
    # the edge's scope leaves out drafts and rolled-over courses: a filter on their state
    (scope,) = facet["dataset"]
    assert (scope["field"], scope["transformations"][0]["subtype"]) == ("state", "FILTER")
    assert scope["transformations"][0]["description"] == edge.scope.description


def conforms_facet(facet: Any) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    shown: dict[str, Any] = Serde.to_dict(facet)
    assert shown["_schemaURL"].startswith("https://openlineage.io/spec/facets/")
    return shown


def test_an_event_with_a_key_the_spec_does_not_name_fails_the_check(tmp_path: Path) -> None:
    event = {
        "eventType": "START",
        "eventTime": CLOCK_START.isoformat(),
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "serviceline", "name": "publish.course.find", "facets": {}},
        "inputs": [],
        "outputs": [],
        "producer": "urn:serviceline:test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    conforms(json.loads(json.dumps(event)))
    for broken in (
        {**event, "eventKind": "START"},
        {**event, "eventType": "BEGUN"},
        {**event, "run": {"runId": "run-1"}},
        {**event, "job": {"name": "no namespace"}},
        {**event, "eventTime": "Monday"},
    ):
        with pytest.raises((NotInSpecError, ValueError)):
            conforms(broken)


@contextlib.contextmanager
def lineage_endpoint() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """An HTTP server on a free port that takes events as Marquez does: its URL and the posts."""
    posted: list[tuple[str, dict[str, Any]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            posted.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posted
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_events_go_to_marquezs_lineage_endpoint_below_its_base_url(
    state_dir: Path,
) -> None:
    async def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"changes": [], "next": 0, "has_more": False})

    with lineage_endpoint() as (url, posted):
        settings = ServiceSettings(lineage_url=url)
        lineage = lineage_for(settings)
        assert lineage is not None
        async with find_copier(state_dir, empty, lineage) as copier:
            await copier.run(FIND_COURSES.name)
            assert lineage.flush(30)
    assert [path for path, _ in posted] == [f"/{MARQUEZ_ENDPOINT}"] * 2
    assert [event["eventType"] for _, event in posted] == ["START", "COMPLETE"]
    for _, event in posted:
        conforms(event)
    assert (lineage.sent, lineage.failed, lineage.dropped) == (2, 0, 0)


def test_a_url_with_a_path_is_the_endpoint_itself() -> None:
    transport = http_transport("http://lineage.example:8080/v1/events")
    assert (transport.url, transport.endpoint) == ("http://lineage.example:8080/", "v1/events")
    marquez = http_transport("http://localhost:5000")
    assert (marquez.url, marquez.endpoint) == ("http://localhost:5000/", "api/v1/lineage")


def test_no_lineage_is_made_unless_the_settings_ask_for_it(tmp_path: Path) -> None:
    assert lineage_for(ServiceSettings()) is None
    to_file = lineage_for(ServiceSettings(lineage_file=tmp_path / "events.jsonl"))
    assert to_file is not None
    assert [t.kind for t in to_file.transports] == ["file"]
    to_file.close()
    with pytest.raises(ValueError, match="lineage_url"):
        ServiceSettings(lineage_url="localhost:5000")


async def test_an_endpoint_that_fails_is_logged_once_and_never_fails_a_copy(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"changes": [], "next": 0, "has_more": False})

    with lineage_endpoint() as (url, _):
        pass  # the server is gone: nothing answers at its port
    lineage = Lineage([http_transport(url, retries=0)], "serviceline")
    with caplog.at_level(logging.WARNING, logger="serviceline.telemetry.lineage"):
        async with find_copier(state_dir, empty, lineage) as copier:
            for _ in range(2):
                stats = await copier.run(FIND_COURSES.name)
                assert stats.found_nothing()
            assert lineage.flush(30)
    assert (lineage.sent, lineage.failed) == (0, 4)
    (warning,) = [r for r in caplog.records if r.name == "serviceline.telemetry.lineage"]
    assert "START of publish.course.find not sent" in warning.getMessage()
