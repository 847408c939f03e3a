"""YAML files a line ships as its built-in ones of a kind, or a user's own, parsed one way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from serviceline.model.lines import Line, current_line

Parsed = TypeVar("Parsed")


@dataclass(frozen=True)
class BuiltinFiles(Generic[Parsed]):
    kind: str  # what one file holds, as its errors name it: "scenario", "study"
    # the folder of the running line's built-in files of this kind, if it ships any
    folder_of: Callable[[Line], Path | None]
    parse: Callable[[Any, str, str], Parsed]  # raw YAML, its source, its default name
    error: Callable[[str, list[str]], Exception]  # source and problems

    def folder(self) -> Path | None:
        return self.folder_of(current_line())

    def names(self) -> list[str]:
        folder = self.folder()
        return [] if folder is None else sorted(path.stem for path in folder.glob("*.yaml"))

    def load_file(self, path: Path) -> Parsed:
        source = str(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise self.error(source, [f"cannot read it: {error.strerror}"]) from error
        except yaml.YAMLError as error:
            raise self.error(source, [f"not YAML: {error}"]) from error
        return self.parse(raw, source, path.stem)

    def load(self, name_or_file: str) -> Parsed:
        """A built-in file by name, or a file by its path."""
        path = Path(name_or_file)
        if path.suffix in (".yaml", ".yml") or path.exists():
            return self.load_file(path)
        folder = self.folder()
        if folder is not None and name_or_file in self.names():
            return self.load_file(folder / f"{name_or_file}.yaml")
        built_in = ", ".join(self.names()) or "none"
        raise self.error(
            name_or_file,
            [f"no built-in {self.kind} or file of that name; built-in: {built_in}"],
        )
