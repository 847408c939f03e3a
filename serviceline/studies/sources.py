"""The event and lag sources a study runs with: the study's workload and every change measured."""

from __future__ import annotations

from serviceline.audit.lag import LagCollector
from serviceline.model.lines import current_line
from serviceline.studies.runner import EventSource, LagSource, Sources, StudyLine


def workload_events(line: StudyLine) -> EventSource:
    """The study's workload, fired through the owners' APIs over the study's span."""
    return current_line().workloads.events(
        line.study.workload,
        line.clients,
        line.api_token,
        seed=line.study.seed,
        start=line.start,
        end=line.end,
    )


def change_lag(line: StudyLine) -> LagSource:
    """The lag of every owner change, from the change, applied and copy-run logs."""
    return LagCollector(line.control)


def default_sources() -> Sources:
    return Sources(events=workload_events, lag=change_lag)
