"""OpenLineage events checked against the spec, as the official Python client carries it.

The client ships no JSON schema file, and no package on the registries this project installs
from ships the spec's: its wheel carries the classes generated from the spec's JSON schema
(`openlineage.client.generated`) instead. So each event is rebuilt from its JSON with those
classes, key by key: a key the spec does not name, a required one missing, a value their
validators refuse (a run id that is no UUID, an event time that is no date-time, an event type
outside the spec's enum) fails, and the client's serializer must give back exactly the event,
each facet's `_schemaURL` the spec's own for that facet.
"""

from __future__ import annotations

import json
import types
from enum import Enum
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import attr
from openlineage.client.event_v2 import RunEvent
from openlineage.client.facet_v2 import (
    BaseFacet,
    column_lineage_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    processing_engine_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

# the facets the line sends, by the key the spec's examples and Marquez know them by
FACETS: dict[str, type[BaseFacet]] = {
    "schema": schema_dataset.SchemaDatasetFacet,
    "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet,
    "jobType": job_type_job.JobTypeJobFacet,
    "documentation": documentation_job.DocumentationJobFacet,
    "nominalTime": nominal_time_run.NominalTimeRunFacet,
    "processing_engine": processing_engine_run.ProcessingEngineRunFacet,
    "errorMessage": error_message_run.ErrorMessageRunFacet,
    "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
}


class NotInSpecError(ValueError):
    pass


def _fields(cls: type[Any]) -> dict[str, attr.Attribute[Any]]:
    attr.resolve_types(cls)  # the generated modules' annotations are strings until resolved
    return {field.name: field for field in attr.fields(cls)}


def _structure(kind: Any, value: Any, where: str) -> Any:
    if get_origin(kind) in (Union, types.UnionType):
        choices = [choice for choice in get_args(kind) if choice is not type(None)]
        if value is None:
            return None
        if len(choices) != 1:
            raise NotInSpecError(f"{where}: cannot choose among {choices}")
        kind = choices[0]
    origin = get_origin(kind)
    if origin is list:
        if not isinstance(value, list):
            raise NotInSpecError(f"{where}: not a list")
        (item,) = get_args(kind)
        return [_structure(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise NotInSpecError(f"{where}: not an object")
        _, item = get_args(kind)
        return {k: _structure(_facet(item, k, where), v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if isinstance(kind, type) and attr.has(kind):
        return _build(kind, value, where)
    if (kind is float and isinstance(value, int | float)) or isinstance(value, kind):
        return value
    raise NotInSpecError(f"{where}: {value!r} is not {kind}")


def _facet(kind: Any, key: str, where: str) -> Any:
    """A facet map's value type: the concrete facet its key names, of the kind the spec allows."""
    if isinstance(kind, type) and issubclass(kind, BaseFacet):
        facet = FACETS.get(key)
        if facet is None or not issubclass(facet, kind):
            raise NotInSpecError(f"{where}.{key}: no {kind.__name__} of this name")
        return facet
    return kind


def _build(cls: type[Any], value: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise NotInSpecError(f"{where}: not an object")
    fields = _fields(cls)
    given: dict[str, Any] = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None or not field.init:
            if key == "_schemaURL" or (cls is RunEvent and key == "schemaURL"):
                continue  # set by the class itself: the round trip compares it
            raise NotInSpecError(f"{where}.{key}: not in the spec's {cls.__name__}")
        given[field.alias or key] = _structure(field.type, item, f"{where}.{key}")
    try:
        return cls(**given)
    except (TypeError, ValueError) as error:
        raise NotInSpecError(f"{where}: {error}") from error


def conforms(event: dict[str, Any]) -> RunEvent:
    """The event rebuilt by the client's spec classes; it must serialize back to itself."""
    rebuilt = _build(RunEvent, event, "event")
    assert isinstance(rebuilt, RunEvent)
    assert Serde.to_dict(rebuilt) == event, "the client's serializer gives another event"
    return rebuilt


def events_in(path: Path) -> list[dict[str, Any]]:
    """A lineage file's events, one JSON event a line, each checked against the spec."""
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for event in events:
        conforms(event)
    return events
