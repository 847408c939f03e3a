"""What the jobs a step ran did, in words: effects first, then failures by cause."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from serviceline.model.topology import Topology


def first_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:200]


def summarise(
    ran: Sequence[Mapping[str, Any]], present: Collection[str], topology: Topology
) -> str:
    """Jobs' effects, then their failures by cause, in the order the jobs first ran.

    A copy whose owner is not part of the scenario fails every time by design: not reported.
    """
    runs: Counter[tuple[str, str]] = Counter()
    effects: dict[tuple[str, str], Counter[str]] = {}
    failures: dict[str, Counter[tuple[str, str]]] = {}
    edges = {edge.name: edge for edge in topology.edges}
    for job in ran:
        key = (job["service"], job["job"])
        runs[key] += 1
        effect = effects.setdefault(key, Counter())
        if not job["ok"]:
            edge = edges.get(job["job"].removesuffix(":full"))
            if edge is None or edge.owner in present:
                failures.setdefault(_cause(job.get("error")), Counter())[key] += 1
            continue
        result = job.get("result")
        if not isinstance(result, Mapping):
            continue
        if "upserted" in result:
            effect["copied"] += result["upserted"]
            effect["deleted"] += result["deleted"]
            effect["flagged"] += result["flagged"]
            effect["rejected"] += len(result.get("rejected") or [])
            effect["relisted"] += bool(result.get("relisted"))
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in result.values()):
            effect.update({name: count for name, count in result.items() if count})
    parts = []
    quiet = 0
    failed = {key for keys in failures.values() for key in keys}
    for key, count in runs.items():
        done = {what: n for what, n in effects[key].items() if n}
        if done:
            shown = ", ".join(
                what if what == "relisted" else f"{what} {n}" for what, n in done.items()
            )
            parts.append(f"{_job_name(topology, *key)}: {shown}")
        elif key not in failed:
            quiet += count
    for cause, keys in failures.items():
        jobs = ", ".join(
            _job_name(topology, *key) + (f" {n} times" if n > 1 else "") for key, n in keys.items()
        )
        parts.append(f"failed ({cause}): {jobs}")
    if quiet:
        parts.append(f"{quiet} quiet job run{'s' if quiet > 1 else ''}")
    return "; ".join(parts)


def _job_name(topology: Topology, service: str, job: str) -> str:
    edge_job = job.removesuffix(":full") in {edge.name for edge in topology.edges}
    return job if job.startswith(f"{service}.") or edge_job else f"{service} {job}"


def _cause(error: str | None) -> str:
    """Why a job failed, in a few words: an owner's answer without its detail."""
    text = first_line(Exception(error or "failed"))
    answered = re.match(r"^(\S+ answered \d{3})", text)
    return answered.group(1) if answered else text[:80]
