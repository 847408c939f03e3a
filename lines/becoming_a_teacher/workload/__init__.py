"""A living line: a declarative workload of the line's year, run through the owners' APIs."""

from lines.becoming_a_teacher.workload.driver import WorkloadDriver
from lines.becoming_a_teacher.workload.spec import Workload, WorkloadError, load_workload

__all__ = ["Workload", "WorkloadDriver", "WorkloadError", "load_workload"]
