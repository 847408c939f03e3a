"""Which line the kernel runs: a topology a package registers under the `serviceline.lines`
entry points, so that the kernel imports none by name."""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from pydantic_settings import BaseSettings, SettingsConfigDict

from serviceline.topology import Topology

ENTRY_POINTS = "serviceline.lines"


class LineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICELINE_", extra="ignore")

    # a registered line's name; empty: the one line installed
    line: str = ""


class UnknownLineError(LookupError):
    pass


def registered() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ENTRY_POINTS)}


@functools.cache
def load_line(name: str) -> Topology:
    """The topology of the line registered as `name`; "" names the only one registered."""
    lines = registered()
    if not name and len(lines) == 1:
        [name] = lines
    if name not in lines:
        known = ", ".join(sorted(lines)) or "none"
        raise UnknownLineError(f"line: no line is registered as {name!r} (registered: {known})")
    topology = lines[name].load()
    if not isinstance(topology, Topology):
        raise UnknownLineError(f"line: {lines[name].value} is not a Topology")
    return topology


def current_line(settings: LineSettings | None = None) -> Topology:
    """The line this process runs, as its settings name it."""
    return load_line((settings or LineSettings()).line)
