"""YAML files a package ships in its builtin/ folder, or a user's own, parsed one way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

Parsed = TypeVar("Parsed")


@dataclass(frozen=True)
class BuiltinFiles(Generic[Parsed]):
    package: str
    kind: str  # what one file holds, as its errors name it: "scenario", "study"
    parse: Callable[[Any, str, str], Parsed]  # raw YAML, its source, its default name
    error: Callable[[str, list[str]], Exception]  # source and problems

    def folder(self) -> Path:
        return Path(str(resources.files(self.package) / "builtin"))

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.folder().glob("*.yaml"))

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
        if name_or_file in self.names():
            return self.load_file(self.folder() / f"{name_or_file}.yaml")
        built_in = ", ".join(self.names())
        raise self.error(
            name_or_file,
            [f"no built-in {self.kind} or file of that name; built-in: {built_in}"],
        )
