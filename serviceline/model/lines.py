"""Which line the kernel runs: one a package registers under the `serviceline.lines` entry points,
so that the kernel imports none by name, with the seed and the workload that belong to it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from serviceline.model.topology import Topology

if TYPE_CHECKING:
    from serviceline.runtime.app import ServiceApp
    from serviceline.stack.control import LineControl
    from serviceline.studies.runner import EventSource

ENTRY_POINTS = "serviceline.lines"
# a seed's task, how much of it is done, and of how much
Progress = Callable[[str, int, int], None]


class Size(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class LineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICELINE_", extra="ignore")

    # a registered line's name, or a line file (`.yaml`); empty: the one line installed
    line: str = ""


class Seeder(Protocol):
    """Writes a line's first data through its owners' APIs, then copies it once everywhere."""

    async def __call__(
        self,
        clients: dict[str, httpx.AsyncClient],
        control: LineControl,
        api_token: str,
        size: Size = Size.SMALL,
        seed: int = 1,
        progress: Progress | None = None,
    ) -> dict[str, int]: ...


class Workloads(Protocol):
    """A line's workloads: a year of its owners' events, by name or file."""

    def check(self, source: str) -> None:
        """Refuses (ValueError, naming the field) a workload that cannot be run."""

    def events(
        self,
        source: str,
        clients: Mapping[str, httpx.AsyncClient],
        api_token: str,
        *,
        seed: int,
        start: datetime,
        end: datetime,
    ) -> EventSource: ...


@dataclass(frozen=True, kw_only=True)
class Line:
    """What a package registers: its topology, each of its services declared once, and how to
    seed the line and keep it moving."""

    topology: Topology
    services: Sequence[ServiceApp]
    seed: Seeder
    # whether the line holds a seed, asked with the write API's token
    already_seeded: Callable[[Mapping[str, httpx.AsyncClient], str], Awaitable[bool]]
    workloads: Workloads
    # the services the seed writes to: a study's line always runs them
    seeded: Sequence[str] = ()
    # the folders of the line's built-in scenarios and studies, by name in `scenario list`
    scenarios: Path | None = None
    studies: Path | None = None

    def __post_init__(self) -> None:
        declared = [service.name for service in self.services]
        named = [service.name for service in self.topology.services]
        if sorted(declared) != sorted(named):
            raise ValueError(
                f"services: the line declares {sorted(declared)}, "
                f"its topology names {sorted(named)}"
            )

    def service(self, name: str) -> ServiceApp:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service named {name!r}")


class UnknownLineError(LookupError):
    pass


def registered() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ENTRY_POINTS)}


LINE_FILE_SUFFIXES = (".yaml", ".yml")


def is_line_file(name: str) -> bool:
    return name.endswith(LINE_FILE_SUFFIXES)


@functools.cache
def load_line(name: str) -> Line:
    """The line registered as `name`, or written in the file `name`; "" names the only one
    registered."""
    if is_line_file(name):
        return _declared(Path(name))
    lines = registered()
    if not name and len(lines) == 1:
        [name] = lines
    if name not in lines:
        known = ", ".join(sorted(lines)) or "none"
        raise UnknownLineError(f"line: no line is registered as {name!r} (registered: {known})")
    line = lines[name].load()
    if not isinstance(line, Line):
        raise UnknownLineError(f"line: {lines[name].value} is not a serviceline.model.lines.Line")
    return line


def _declared(path: Path) -> Line:
    # the kernel's own generic services, imported once a file asks for them: they build on the
    # app factory, which itself reads which line runs
    from serviceline.declared.line import declared_line
    from serviceline.declared.spec import LineFileError

    try:
        return declared_line(path)
    except LineFileError as error:
        raise UnknownLineError(f"line: {error}") from error


def current_line(settings: LineSettings | None = None) -> Line:
    """The line this process runs, as its settings name it."""
    return load_line(line_name(settings))


def line_name(settings: LineSettings | None = None) -> str:
    """The line as another process is told it: a line file by its absolute path."""
    name = (settings or LineSettings()).line
    return str(Path(name).resolve()) if is_line_file(name) else name
