"""OpenLineage: each copy run as RunEvents, START then COMPLETE or FAIL, sent off the copy's path.

The job is the edge (`owner.entity.consumer`, in the line's job namespace), its input the owner's
entity (`serviceline://<owner>`, named after the entity) and its output the consumer's copy table
(`serviceline://<consumer>`, named after the table), with the copy table's schema and, from the
edge's mapping, the owner field each copied column comes from. A service's own base URL is not
the namespace: it moves with a port offset or a container's host name, and the same line would
then draw a new graph each time it starts.

Events go through the official client's transports (its HttpTransport, e.g. to Marquez's
`/api/v1/lineage`, and its FileTransport, one JSON event a line) from one thread of their own, in
the order they were made: a copy never waits for an endpoint, and one that fails is logged and
counted, never failing the run.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from openlineage.client import constants
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    JobFacet,
    OutputDatasetFacet,
    RunFacet,
    column_lineage_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG
from openlineage.client.transport.transport import Transport
from openlineage.client.uuid import generate_new_uuid
from sqlalchemy import inspect
from sqlmodel import SQLModel

from serviceline.model.topology import Edge
from serviceline.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)

VERSION = version("serviceline")
PRODUCER = f"urn:serviceline:{VERSION}"
# where Marquez takes events, below the base URL it is reached at
MARQUEZ_ENDPOINT = "api/v1/lineage"
# events waiting for a slow endpoint; past this many, new ones are dropped and counted
CAPACITY = 10_000
# what the copier's own columns of every copy table hold
KERNEL_COLUMNS = {
    "source_version": "the owner's version the copy holds, where the owner's API gives one",
    "copied_at": "when the copy was last written from its owner (simulated clock)",
    "source_deleted_at": "when the owner deleted it, for a copy kept because it is still used",
    "local_edits": "the columns edited here, on a copy that allows local edits",
    "withheld": "the owner's values a local edit keeps out (local_wins)",
    "stamp": "new on every write of the row",
}


def dataset_namespace(service: str) -> str:
    return f"serviceline://{service}"


def table_name(model: type[SQLModel]) -> str:
    return str(model.__tablename__)


def _transformation(edge: Edge, column: str) -> column_lineage_dataset.Transformation:
    values = edge.value_maps.get(column)
    if not values:
        return column_lineage_dataset.Transformation(type="DIRECT", subtype="IDENTITY")
    return column_lineage_dataset.Transformation(
        type="DIRECT",
        subtype="TRANSFORMATION",
        description=f"the owner's values mapped to the consumer's ({len(values)} values)",
    )


def column_lineage(edge: Edge) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Each copied column from the owner field the edge's mapping reads it from.

    The edge's scope, which owner records it copies at all, is the whole dataset's lineage: a
    filter on the fields it reads.
    """
    namespace = dataset_namespace(edge.owner)
    fields: dict[str, column_lineage_dataset.Fields] = {}
    for source, column in edge.mapping.items():
        read = column_lineage_dataset.InputField(
            namespace=namespace,
            name=edge.entity,
            field=source,
            transformations=[_transformation(edge, column)],
        )
        fields.setdefault(column, column_lineage_dataset.Fields(inputFields=[]))
        fields[column].inputFields.append(read)
    scoped = [*edge.scope.include, *edge.scope.exclude]
    dataset = [
        column_lineage_dataset.InputField(
            namespace=namespace,
            name=edge.entity,
            field=name,
            transformations=[
                column_lineage_dataset.Transformation(
                    type="INDIRECT", subtype="FILTER", description=edge.scope.description
                )
            ],
        )
        for name in scoped
    ]
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields=fields, dataset=dataset, producer=PRODUCER
    )


def copy_schema(edge: Edge, model: type[SQLModel]) -> schema_dataset.SchemaDatasetFacet:
    """The copy table's columns, as its database types them, each said where it comes from."""
    sources = {column: source for source, column in edge.mapping.items()}
    fields = []
    for position, column in enumerate(inspect(model).columns, start=1):
        description = KERNEL_COLUMNS.get(column.name)
        if column.name in sources:
            description = f"{edge.owner}'s {edge.entity} {sources[column.name]}"
        fields.append(
            schema_dataset.SchemaDatasetFacetFields(
                name=column.name,
                type=str(column.type),
                description=description,
                ordinal_position=position,
            )
        )
    return schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)


def read_schema(edge: Edge) -> schema_dataset.SchemaDatasetFacet:
    """The owner's fields the edge reads, as its API names them (the owner types them itself)."""
    names = dict.fromkeys([*edge.mapping, *edge.scope.include, *edge.scope.exclude])
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=name) for name in names],
        producer=PRODUCER,
    )


@dataclass(frozen=True)
class EdgeLineage:
    """What every event of an edge's runs says of the edge: its job, input and output."""

    job: Job
    inputs: list[InputDataset]
    output_namespace: str
    output_name: str
    output_facets: dict[str, DatasetFacet]

    @classmethod
    def of(cls, edge: Edge, model: type[SQLModel], namespace: str) -> EdgeLineage:
        job_facets: dict[str, JobFacet] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH",
                integration="SERVICELINE",
                jobType=f"COPY_{edge.mechanism.value.upper()}",
                producer=PRODUCER,
            )
        }
        if edge.description:
            job_facets["documentation"] = documentation_job.DocumentationJobFacet(
                description=edge.description, producer=PRODUCER
            )
        source = InputDataset(
            namespace=dataset_namespace(edge.owner),
            name=edge.entity,
            facets={"schema": read_schema(edge)},
        )
        return cls(
            Job(namespace=namespace, name=edge.name, facets=job_facets),
            [source],
            dataset_namespace(edge.consumer),
            table_name(model),
            {"schema": copy_schema(edge, model), "columnLineage": column_lineage(edge)},
        )


@dataclass
class RunLineage:
    """One copy run's events: START when made, then COMPLETE, FAIL or ABORT as the run ends."""

    lineage: Lineage
    parts: EdgeLineage
    started_at: datetime
    run_id: str = ""

    def __post_init__(self) -> None:
        # a UUIDv7, as the spec recommends, from the run's simulated start: ids sort as runs do
        self.run_id = self.run_id or str(generate_new_uuid(self.started_at))
        run_facets: dict[str, RunFacet] = {
            "nominalTime": nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=_when(self.started_at), producer=PRODUCER
            ),
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=VERSION,
                name="serviceline",
                openlineageAdapterVersion=constants.__version__,
                producer=PRODUCER,
            ),
        }
        self.lineage.send(self._event(RunState.START, self.started_at, run_facets))

    def completed(self, at: datetime, written: int) -> None:
        """The run finished, having written `written` rows of the copy (upserted or flagged)."""
        statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=written, producer=PRODUCER
        )
        self.lineage.send(self._event(RunState.COMPLETE, at, {}, {"outputStatistics": statistics}))

    def failed(self, at: datetime, error: BaseException) -> None:
        """The run raised `error`: FAIL, with its message; a cancelled run is an ABORT."""
        if not isinstance(error, Exception):
            self.lineage.send(self._event(RunState.ABORT, at, {}))
            return
        message = error_message_run.ErrorMessageRunFacet(
            message=str(error) or type(error).__name__,
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error)),
            producer=PRODUCER,
        )
        self.lineage.send(self._event(RunState.FAIL, at, {"errorMessage": message}))

    def _event(
        self,
        state: RunState,
        at: datetime,
        run_facets: dict[str, RunFacet],
        output_facets: dict[str, OutputDatasetFacet] | None = None,
    ) -> RunEvent:
        parts = self.parts
        output = OutputDataset(
            namespace=parts.output_namespace,
            name=parts.output_name,
            facets=parts.output_facets,
            outputFacets=output_facets or {},
        )
        # the simulated clock's time, not the wall clock's: the line's own record of each run,
        # its schedule, cursors and lag are all on the simulated clock, and a simulated day of
        # runs passes in seconds of real time, so wall-clock times would say nothing of when a
        # run happened in the line
        return RunEvent(
            eventType=state,
            eventTime=_when(at),
            run=Run(runId=self.run_id, facets=run_facets),
            job=parts.job,
            inputs=parts.inputs,
            outputs=[output],
            producer=PRODUCER,
        )


def _when(at: datetime) -> str:
    return at.isoformat()


class Lineage:
    """Sends RunEvents through the client's transports from a thread of its own, in order.

    A copy hands an event over and goes on; an endpoint that fails is logged once as it starts
    failing (and once as it answers again), each event it missed counted in `failed`. Past
    `capacity` waiting events, new ones are dropped and counted in `dropped`.
    """

    def __init__(
        self, transports: Sequence[Transport], namespace: str, *, capacity: int = CAPACITY
    ) -> None:
        self.transports = tuple(transports)
        self.namespace = namespace
        self.capacity = capacity
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._pending: deque[RunEvent] = deque()
        self._busy = False
        self._closing = False
        self._failing: set[int] = set()
        # by edge and copy table: the same for every run
        self._edges: dict[tuple[str, str], EdgeLineage] = {}
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._drain, name="openlineage", daemon=True)
        self._thread.start()

    def start(self, edge: Edge, model: type[SQLModel], at: datetime) -> RunLineage:
        """A run of `edge` into `model`'s table starts at `at` (simulated): its START is sent."""
        key = (edge.name, table_name(model))
        parts = self._edges.get(key)
        if parts is None:
            parts = self._edges[key] = EdgeLineage.of(edge, model, self.namespace)
        return RunLineage(self, parts, at)

    def send(self, event: RunEvent) -> None:
        with self._ready:
            if self._closing or len(self._pending) >= self.capacity:
                if not self.dropped:
                    log.warning("OpenLineage: events are waiting or closed; dropping new ones")
                self.dropped += 1
                return
            self._pending.append(event)
            self._ready.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event handed over has been sent or has failed; False on timeout."""
        with self._ready:
            return self._ready.wait_for(lambda: not (self._pending or self._busy), timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what waits, for up to `timeout` seconds; what is left then is dropped."""
        self.flush(timeout)
        with self._ready:
            self._closing = True
            left = len(self._pending)
            self._pending.clear()
            self.dropped += left
            self._ready.notify_all()
        if left:
            log.warning("OpenLineage: %d events not sent within %.0fs of closing", left, timeout)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            for transport in self.transports:
                transport.close(timeout)

    def _drain(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._pending) or self._closing)
                if not self._pending:
                    return
                event = self._pending.popleft()
                self._busy = True
            try:
                for index, transport in enumerate(self.transports):
                    self._emit(index, transport, event)
            finally:
                with self._ready:
                    self._busy = False
                    self._ready.notify_all()

    def _emit(self, index: int, transport: Transport, event: RunEvent) -> None:
        try:
            transport.emit(event)
        except Exception as error:
            self.failed += 1
            if index not in self._failing:
                self._failing.add(index)
                log.warning(
                    "OpenLineage %s transport: %s of %s not sent (%s); copies go on, and "
                    "later failures are counted until it answers again",
                    transport.kind,
                    event.eventType.value if event.eventType else "event",
                    event.job.name,
                    error,
                )
            return
        self.sent += 1
        if index in self._failing:
            self._failing.discard(index)
            log.warning("OpenLineage %s transport answers again", transport.kind)


def http_transport(url: str, timeout: float = 5.0, retries: int = 2) -> HttpTransport:
    """Events POSTed to `url`: a base URL such as Marquez's gets its `/api/v1/lineage`; a URL
    with a path is taken as the endpoint itself. An event is tried `retries` more times, with
    the client's back-off, before it counts as failed."""
    parts = urlsplit(url)
    endpoint = parts.path.lstrip("/") or MARQUEZ_ENDPOINT
    base = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
    retry = {**DEFAULT_RETRY_CONFIG, "total": retries, "connect": retries, "read": retries}
    return HttpTransport(HttpConfig(url=base, endpoint=endpoint, timeout=timeout, retry=retry))


def file_transport(path: Path) -> FileTransport:
    """Events appended to one file, one JSON event a line (each service appends its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def lineage_for(settings: ServiceSettings) -> Lineage | None:
    """The lineage these settings ask for, or None when they name no endpoint and no file."""
    transports: list[Transport] = []
    if settings.lineage_url:
        transports.append(http_transport(str(settings.lineage_url)))
    if settings.lineage_file is not None:
        transports.append(file_transport(settings.lineage_file))
    return Lineage(transports, settings.lineage_namespace) if transports else None
