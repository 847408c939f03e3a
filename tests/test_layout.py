"""The repository's layout as the README draws it, and tests that mirror the code they test."""

import re
from pathlib import Path

import pytest

from serviceline.testing import ROOT

KERNEL = ROOT / "serviceline"
TESTS = ROOT / "tests"


def built_map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it is built", 1)[1]
    return section.split("```", 2)[1]


def packages(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.glob("*/__init__.py"))


@pytest.mark.parametrize("package", packages(KERNEL), ids=lambda p: p.name)
def test_the_readme_map_names_every_kernel_package(package: Path) -> None:
    assert re.search(rf"^  {package.name}/ ", built_map(), re.M)


# the map draws these by what they hold, not module by module
DRAWN_WHOLE = {"dashboard", "scenarios", "studies"}


@pytest.mark.parametrize(
    "module",
    [
        m
        for p in packages(KERNEL)
        if p.name not in DRAWN_WHOLE
        for m in sorted(p.glob("*.py"))
        if m.name != "__init__.py"
    ],
    ids=lambda m: f"{m.parent.name}/{m.name}",
)
def test_the_readme_map_names_every_module_of_a_kernel_role(module: Path) -> None:
    assert re.search(rf"\b{re.escape(module.name)}\b", built_map())


@pytest.mark.parametrize(
    "folder",
    sorted(p.parent for p in TESTS.rglob("__init__.py") if p.parent not in {TESTS, TESTS / "e2e"}),
    ids=lambda p: str(p.relative_to(TESTS)),
)
def test_each_test_folder_mirrors_a_folder_of_code(folder: Path) -> None:
    mirrored = folder.relative_to(TESTS)
    assert (KERNEL / mirrored).is_dir() or (ROOT / mirrored).is_dir()


def test_every_test_lies_in_the_folder_of_what_it_tests() -> None:
    assert sorted(p.name for p in TESTS.glob("test_*.py")) == ["test_layout.py"]
