"""A living line: a declarative workload of the line's year, run through the owners' APIs."""

from serviceline.workload.driver import WorkloadDriver
from serviceline.workload.spec import Workload, WorkloadError, load_workload

__all__ = ["Workload", "WorkloadDriver", "WorkloadError", "load_workload"]
