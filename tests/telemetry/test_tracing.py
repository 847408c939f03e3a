"""Traces: W3C context on every request between services, copies continuing their writes' traces."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session, select

from serviceline.owner.feed import ChangeLog
from serviceline.telemetry.tracing import Tracing, add_context_column, traces_url
from serviceline.testing import API, AUDITOR, LineUnderTest, in_process_line
from tests import builders
from tests.dashboard.test_dashboard import dashboard_of

pytestmark = pytest.mark.anyio

TO_APPLY = "publish.course.apply"
TO_FIND = "publish.course.find"
TO_MANAGE = "apply.application.manage"


def answered(response: httpx.Response, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def served(spans: Sequence[ReadableSpan], name: str, method: str, route: str) -> ReadableSpan:
    """The one server span of `name` answering `method` on `route`."""
    (found,) = [
        span
        for span in spans
        if span.kind is SpanKind.SERVER
        and service(span) == name
        and span.attributes is not None
        and span.attributes.get("http.request.method", span.attributes.get("http.method")) == method
        and span.attributes.get("http.route") == route
    ]
    return found


def dump(spans: Sequence[ReadableSpan]) -> str:
    return "\n".join(
        f"{service(s)} {s.kind} {s.name} trace={s.context.trace_id:x} "
        f"parent={s.parent.span_id if s.parent else None} attrs={dict(s.attributes or {})}"
        for s in spans
    )


async def course_in_apply(line: LineUnderTest) -> str:
    publish = line["publish"]
    answered(await publish.post("/providers", json=builders.provider(), headers=API), 201)
    answered(await publish.post("/providers/2FR/sites", json=builders.site(), headers=API), 201)
    course = answered(
        await publish.post("/providers/2FR/courses", json=builders.course(), headers=API), 201
    )
    await line.control.sync()
    uuid: str = course["uuid"]
    return uuid


def spans_of(spans: Sequence[ReadableSpan], name: str, kind: SpanKind) -> list[ReadableSpan]:
    return [span for span in spans if service(span) == name and span.kind is kind]


def applying(spans: Sequence[ReadableSpan], name: str, edge: str) -> ReadableSpan:
    """The one span of `name` applying changes of `edge`."""
    (found,) = [s for s in spans_of(spans, name, SpanKind.CONSUMER) if s.name == f"apply {edge}"]
    return found


def run_of(spans: Sequence[ReadableSpan], edge: str) -> ReadableSpan:
    (found,) = [span for span in spans if span.name == f"copy {edge}"]
    return found


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return (
        span.parent is not None
        and span.context.trace_id == parent.context.trace_id
        and span.parent.span_id == parent.context.span_id
    )


async def application_to(line: LineUnderTest, course: str) -> str:
    """An application, made at Apply, to a course Apply has copied."""
    apply = line["apply"]
    candidate = answered(
        await apply.post("/candidates", json=builders.candidate(), headers=API), 201
    )
    body = builders.application(candidate["id"], course)
    id: str = answered(await apply.post("/applications", json=body, headers=API), 201)["id"]
    return id


def dashboard_tracing(dashboard: httpx.AsyncClient) -> Tracing | None:
    transport = dashboard._transport
    assert isinstance(transport, httpx.ASGITransport)
    tracing: Tracing | None = transport.app.state.tracing  # type: ignore[attr-defined]
    return tracing


def connected(spans: Sequence[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """The spans of `root`'s trace, each of which must reach `root` through its parents."""
    trace = [s for s in spans if s.context.trace_id == root.context.trace_id]
    ids = {s.context.span_id for s in trace}
    assert all(s is root or (s.parent is not None and s.parent.span_id in ids) for s in trace)
    return trace


async def test_a_course_change_is_one_trace_from_publish_to_each_copy_and_on_to_manage(
    state_dir: Path,
) -> None:
    names = ["publish", "find", "apply", "manage"]
    async with in_process_line(names, state_dir, tracing=True) as line:
        uuid = await course_in_apply(line)
        id = await application_to(line, uuid)
        await line.control.run_edge(TO_MANAGE)
        spans = line.spans()
        moved = {"name": "Art", "start_date": "2027-10-01"}
        answered(await line["publish"].patch(f"/courses/{uuid}", json=moved, headers=API))
        for edge in (TO_APPLY, TO_FIND, TO_MANAGE):
            await line.control.run_edge(edge)
        finished = spans.get_finished_spans()

        write = served(finished, "publish", "PATCH", "/courses/{uuid}")
        assert write.parent is None  # the test's request carried no trace
        # Apply read it through Publish's API v1, Find through the change feed: each applied it
        # in a span of the write's own trace, linked to the run that read it
        for consumer, edge in (("apply", TO_APPLY), ("find", TO_FIND)):
            applied = applying(finished, consumer, edge)
            assert child_of(applied, write), dump(finished)
            assert applied.attributes is not None
            assert applied.attributes["serviceline.keys"] == (uuid,)
            run = run_of(finished, edge)
            assert [link.context for link in applied.links] == [run.context]
        assert (await line.copy_of("apply", "course", uuid))["name"] == "Art"
        # the new start date touched the application to the course in Apply's own apply, so
        # Manage's copy of it goes on in the same trace, linked to Manage's own run
        touched = applying(finished, "manage", TO_MANAGE)
        assert child_of(touched, applying(finished, "apply", TO_APPLY)), dump(finished)
        assert touched.attributes is not None
        assert touched.attributes["serviceline.keys"] == (id,)
        assert [link.context for link in touched.links] == [run_of(finished, TO_MANAGE).context]
        assert {service(s) for s in connected(finished, write)} == set(names)
        assert (await line.copy_of("manage", "application", id))["source_version"] == 2

        # each run is a span with what it read; the requests it made are its children, and the
        # owner served each as a server span of the run's trace, its parent the caller's span
        run = run_of(finished, TO_APPLY)
        assert run.attributes is not None
        assert {
            name: run.attributes[f"serviceline.{name}"]
            for name in ("edge", "mechanism", "pages", "records", "upserted")
        } == {
            "edge": TO_APPLY,
            "mechanism": "updated_since",
            "pages": 1,
            "records": 1,
            "upserted": 1,
        }
        asked = [s for s in spans_of(finished, "apply", SpanKind.CLIENT) if child_of(s, run)]
        assert len(asked) == run.attributes["serviceline.requests"] == 2
        reads = [
            s
            for s in spans_of(finished, "publish", SpanKind.SERVER)
            if s.context.trace_id == run.context.trace_id
        ]
        assert sorted(str(s.parent.span_id if s.parent else None) for s in reads) == sorted(
            str(s.context.span_id) for s in asked
        )
        feed_run = run_of(finished, TO_FIND)
        assert feed_run.attributes is not None
        assert (
            feed_run.attributes["serviceline.mechanism"],
            feed_run.attributes["serviceline.pages"],
        ) == ("feed", 1)


async def test_a_decision_is_traced_from_manage_to_apply_and_back_to_its_copy(
    state_dir: Path,
) -> None:
    async with in_process_line(["publish", "apply", "manage"], state_dir, tracing=True) as line:
        uuid = await course_in_apply(line)
        spans = line.spans()
        id = await application_to(line, uuid)
        await line.control.run_edge(TO_MANAGE)
        submitted = served(spans.get_finished_spans(), "apply", "POST", "/applications")
        assert child_of(applying(spans.get_finished_spans(), "manage", TO_MANAGE), submitted)
        spans.clear()

        offer = {"conditions": ["Fitness to teach check"], "user": builders.provider_user()}
        path = f"/applications/{id}/offer"
        answered(await line["manage"].post(path, json=offer, headers=API))
        await line.control.run_edge(TO_MANAGE)
        finished = spans.get_finished_spans()

        decided = served(finished, "manage", "POST", "/applications/{id}/offer")
        (sent,) = [s for s in spans_of(finished, "manage", SpanKind.CLIENT) if child_of(s, decided)]
        # the command carried the decision's trace to Apply, its owner, in its traceparent
        owner = [s for s in spans_of(finished, "apply", SpanKind.SERVER) if child_of(s, sent)]
        assert len(owner) == 1, dump(finished)
        assert owner[0].attributes is not None
        assert "/offer" in str(owner[0].attributes["http.route"])
        # and Apply's change, copied back to Manage at its next sync, goes on in the same trace
        copied = applying(finished, "manage", TO_MANAGE)
        assert child_of(copied, owner[0])
        assert copied.attributes is not None
        assert copied.attributes["serviceline.keys"] == (id,)
        view = answered(await line["manage"].get(f"/applications/{id}", headers=API))
        assert view["application"]["status"] == "offer"


async def test_the_dashboard_is_traced_as_a_service_is_from_its_button_to_the_owner(
    state_dir: Path,
) -> None:
    async with (
        in_process_line(["publish", "find"], state_dir, tracing=True) as line,
        dashboard_of(line, state_dir, tracing=True) as (dashboard, board),
    ):
        await course_in_apply(line)
        spans = line.spans()
        tracing = dashboard_tracing(dashboard)
        assert tracing is not None
        tracing.provider.add_span_processor(SimpleSpanProcessor(spans))
        ran = await dashboard.post("/edges/run", params={"edge": TO_FIND})
        assert ran.status_code == 303
        await board.idle()
        finished = spans.get_finished_spans()

    pressed = served(finished, "dashboard", "POST", "/edges/run")
    assert pressed.parent is None
    # the run the button started, and what it read of Publish, are of the button's own trace
    trace = connected(finished, pressed)
    assert {service(s) for s in trace} == {"dashboard", "find", "publish"}, dump(finished)
    assert run_of(finished, TO_FIND) in trace
    # the dashboard's request carried it to Find, as one service's to another does
    (asked,) = [s for s in trace if s.name == "POST /admin/edges/{owner}/{entity}/run"]
    assert [s for s in spans_of(finished, "dashboard", SpanKind.CLIENT) if child_of(asked, s)]


async def test_a_line_that_does_not_trace_logs_and_serves_no_context(state_dir: Path) -> None:
    async with (
        in_process_line(["publish", "find"], state_dir) as line,
        dashboard_of(line, state_dir) as (dashboard, _),
    ):
        for transport in line.transports.values():
            assert isinstance(transport, httpx.ASGITransport)
            assert transport.app.state.kernel.tracing is None  # type: ignore[attr-defined]
        assert dashboard_tracing(dashboard) is None
        await course_in_apply(line)
        feed = answered(await line["publish"].get("/feed/course", headers=AUDITOR))
        assert feed["changes"]
        assert all("traceparent" not in change for change in feed["changes"])
        courses = answered(
            await line["publish"].get("/api/public/v1/recruitment_cycles/2027/courses")
        )
        assert all("traceparent" not in course["meta"] for course in courses["data"])
        publish = line.transports["publish"]
        assert isinstance(publish, httpx.ASGITransport)
        engine = publish.app.state.kernel.engine  # type: ignore[attr-defined]
        with Session(engine) as session:
            logged = session.exec(select(ChangeLog.traceparent)).all()
        assert logged
        assert set(logged) == {None}


def closed_port() -> int:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port: int = bound.getsockname()[1]
    return port


async def test_an_otlp_endpoint_that_does_not_answer_costs_the_line_nothing(
    state_dir: Path,
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    async with in_process_line(["publish", "find"], state_dir, otlp_endpoint=endpoint) as line:
        uuid = await course_in_apply(line)
        # the spans go nowhere, but the line works, and traces: its changes carry their context
        assert (await line.copy_of("find", "course", uuid))["source_version"] == 1
        feed = answered(await line["publish"].get("/feed/course", headers=AUDITOR))
        (change,) = feed["changes"]
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", change["traceparent"])
    # and every service stopped: the exporters gave up on what they could not send


def test_a_change_log_from_before_traces_gains_its_column(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE kernel_changelog (seq INTEGER PRIMARY KEY)"))
    add_context_column(engine)
    add_context_column(engine)  # once is enough: again changes nothing
    columns = [column["name"] for column in inspect(engine).get_columns("kernel_changelog")]
    assert columns == ["seq", "traceparent"]
    engine.dispose()


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://localhost:4318", "http://localhost:4318/v1/traces"),
        ("http://jaeger:4318/", "http://jaeger:4318/v1/traces"),
        ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
    ],
)
def test_an_endpoint_is_its_base_url(endpoint: str, url: str) -> None:
    assert traces_url(endpoint) == url
