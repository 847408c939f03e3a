"""Traces: W3C trace context on every request between services, and spans exported by OTLP.

Off unless a service's settings turn it on (`tracing`, or an `otlp_endpoint` to export to):
then the service has its own TracerProvider (its resource's service.name is the service's
name), FastAPI's instrumentation makes a server span of each request it serves, httpx's a client
span of each request its upstream clients send, with the `traceparent` header that carries the
trace to the service called, so a command (Manage's decision posted to Apply, Register's TRN
request to DQT) is traced from its caller to its owner.

A copy happens later than the write it copies, in another request, so requests alone do not
join the two: the owner's change log keeps the context of the span that wrote each change (a
request, or a consumer's own apply), the kernel feed serves it with the change, and so does the
`meta` of a resource in Publish's API v1 for the version it shows. The consumer's apply of a
change is a span whose parent is that context, linked to the copy run that read it, and any
change the apply makes to the consumer's own records is logged with the apply's context: the
next hop goes on in the same trace. A copy run is a span of its own, with its edge, mechanism,
pages and records as attributes, parent of the requests it makes to the owner.

With tracing off none of this is made: no span starts, no context is logged or served, and
the only cost is reading an empty context variable once per flush.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from serviceline.consumer.batches import CopyStats
    from serviceline.model.topology import Edge
    from serviceline.owner.feed import Owned

TRACEPARENT = "traceparent"
TRACES_PATH = "/v1/traces"
# an exporter gives up on a batch it cannot send after this long, on its own thread
EXPORT_TIMEOUT = 5.0
# the requests no one follows a change through: health checks and scrapes
EXCLUDED_URLS = "/health$,/metrics$"
# an apply span names at most this many of the keys it applied
KEYS_NAMED = 50
_PROPAGATOR = TraceContextTextMapPropagator()


class TracingSettings(Protocol):
    """What a process's settings say of its traces: a service's, or the dashboard's."""

    otlp_endpoint: str
    tracing: bool


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for an endpoint given as its base, e.g. http://localhost:4318."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


class Tracing:
    """One service's traces: its own provider, never the process's global one."""

    def __init__(self, service: str, provider: TracerProvider) -> None:
        self.service = service
        self.provider = provider
        self.tracer = provider.get_tracer("serviceline")

    @classmethod
    def start(cls, service: str, settings: TracingSettings) -> Tracing | None:
        """The process's tracing, exporting to the settings' OTLP endpoint; None when off.

        An endpoint that does not answer costs nothing but the exporter's own thread: spans
        are sent in batches from it, a batch it cannot send is dropped after EXPORT_TIMEOUT,
        and no request waits for it.
        """
        if not (settings.tracing or settings.otlp_endpoint):
            return None
        resource = Resource.create({SERVICE_NAME: service})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        if settings.otlp_endpoint:
            exporter = OTLPSpanExporter(
                endpoint=traces_url(settings.otlp_endpoint), timeout=EXPORT_TIMEOUT
            )
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(service, provider)

    def instrument_app(self, app: FastAPI) -> None:
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            excluded_urls=EXCLUDED_URLS,
            exclude_spans=["receive", "send"],
        )

    def instrument_client(self, client: httpx.AsyncClient) -> None:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Send what is left and stop the exporter's thread."""
        self.provider.shutdown()

    @contextlib.contextmanager
    def copy_run(self, edge: Edge, *, full: bool) -> Iterator[Span]:
        """The span of one run of `edge`: current while it runs, so its requests are its own."""
        attributes = {
            "serviceline.edge": edge.name,
            "serviceline.entity": edge.entity,
            "serviceline.owner": edge.owner,
            "serviceline.mechanism": edge.mechanism.value,
            "serviceline.full": full,
        }
        with self.tracer.start_as_current_span(f"copy {edge.name}", attributes=attributes) as span:
            yield span

    @staticmethod
    def ran(span: Span, stats: CopyStats) -> None:
        """What the run found, on its span."""
        span.set_attributes(
            {
                "serviceline.mechanism": stats.mechanism,
                "serviceline.full": stats.full,
                "serviceline.pages": stats.pages,
                "serviceline.records": stats.fetched,
                "serviceline.upserted": stats.upserted,
                "serviceline.deleted": stats.deleted,
                "serviceline.flagged": stats.flagged,
                "serviceline.unchanged": stats.unchanged,
                "serviceline.requests": stats.traffic.requests,
                "serviceline.bytes": stats.traffic.bytes,
                "serviceline.skipped": stats.skipped,
                "serviceline.relisted": stats.relisted,
            }
        )

    @contextlib.contextmanager
    def applying(self, edge: Edge, contexts: Mapping[str, str | None]) -> Iterator[None]:
        """Spans for the changes one batch applies, `contexts` giving each key's write's.

        One span per write: a child of the span that wrote the change at the owner, linked to
        the run reading it, open until the batch commits. While it is open, what the batch
        changes of this service's own records is logged with that span's context, or with the
        run's when the batch applies the changes of more than one write.
        """
        by_write: dict[str, list[str]] = {}
        for key, context in contexts.items():
            if context is not None:
                by_write.setdefault(context, []).append(key)
        if not by_write:
            yield
            return
        run = trace.get_current_span()
        links = [Link(run.get_span_context())] if run.get_span_context().is_valid else []
        with contextlib.ExitStack() as spans:
            for context, keys in by_write.items():
                span = self.tracer.start_span(
                    f"apply {edge.name}",
                    context=_PROPAGATOR.extract({TRACEPARENT: context}),
                    kind=SpanKind.CONSUMER,
                    links=links,
                    attributes={
                        "serviceline.edge": edge.name,
                        "serviceline.entity": edge.entity,
                        "serviceline.records": len(keys),
                        "serviceline.keys": keys[:KEYS_NAMED],
                    },
                )
                spans.enter_context(trace.use_span(span, end_on_exit=True))
            if len(by_write) > 1:
                # the changes of several writes: what this batch writes of its own is the run's
                spans.enter_context(trace.use_span(run, end_on_exit=False))
            yield


def current_traceparent() -> str | None:
    """The W3C traceparent of the span current here; None where none is (tracing off)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def logged_contexts(session: Session, records: Sequence[Owned]) -> dict[str, str]:
    """The context of the write that made each record's current version, by key, where logged."""
    # the change log records what this module gives it: imported here, not in a cycle
    from serviceline.owner.feed import ChangeLog

    if not records:
        return {}
    versions = {record.key: record.version for record in records}
    found = session.exec(
        select(ChangeLog.key, ChangeLog.version, ChangeLog.traceparent).where(
            ChangeLog.entity == records[0].entity,
            col(ChangeLog.key).in_(list(versions)),
            col(ChangeLog.traceparent).is_not(None),
        )
    )
    return {
        key: context
        for key, version, context in found
        if context is not None and versions.get(key) == version
    }


def serve_contexts(session: Session, records: Sequence[Owned], resources: list[Any]) -> None:
    """Add to each JSON:API resource's `meta` the context of the write its version came from."""
    contexts = logged_contexts(session, records)
    for record, body in zip(records, resources, strict=True):
        context = contexts.get(record.key)
        if context is not None:
            body.setdefault("meta", {})[TRACEPARENT] = context


def add_context_column(engine: Engine, tables: Collection[str] = ("kernel_changelog",)) -> None:
    """Give a change log made before it kept contexts its nullable `traceparent` column."""
    present = set(inspect(engine).get_table_names())
    with engine.begin() as connection:
        for table in tables:
            if table not in present:
                continue
            columns = {column["name"] for column in inspect(connection).get_columns(table)}
            if TRACEPARENT not in columns:
                connection.execute(text(f"ALTER TABLE {table} ADD COLUMN {TRACEPARENT} VARCHAR"))
