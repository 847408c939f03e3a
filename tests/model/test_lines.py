"""The kernel knows no line: it imports none, and runs the one a package registers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lines.becoming_a_teacher.line import BECOMING_A_TEACHER
from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import app
from serviceline.model.lines import (
    ENTRY_POINTS,
    UnknownLineError,
    current_line,
    load_line,
    registered,
)
from serviceline.model.topology import Kind
from serviceline.testing import ROOT

KERNEL = Path(ROOT) / "serviceline"
THE_LINE = ("lines",)
KERNEL_MODULES = sorted(
    str(path.relative_to(KERNEL)) for path in KERNEL.rglob("*.py") if path.name != "__init__.py"
)


def imported(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", KERNEL_MODULES)
def test_no_kernel_module_imports_the_line_or_its_services(module: str) -> None:
    names = imported(KERNEL / module)
    assert [n for n in names if n.split(".")[0] in THE_LINE] == []


def test_importing_the_whole_kernel_loads_no_line_module() -> None:
    modules = ", ".join(
        "serviceline." + name.removesuffix(".py").replace("/", ".") for name in KERNEL_MODULES
    )
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, {modules}; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    assert "serviceline.consumer.copier" in loaded
    assert [m for m in loaded if m.split(".")[0] in THE_LINE] == []


def test_no_kernel_text_names_the_line() -> None:
    # its pages, help and API summaries take the line's name from its topology
    texts = [p for p in KERNEL.rglob("*") if p.suffix in {".py", ".html", ".js", ".css"}]
    assert [str(p) for p in texts if LINE.title in p.read_text(encoding="utf-8")] == []
    assert LINE.title == "Becoming a teacher"


def test_a_line_names_itself_and_its_groups_or_takes_the_kernels_words() -> None:
    assert LINE.called == "the 'Becoming a teacher' line"
    assert LINE.group_title(Kind.RECORD_SYSTEM) == "Student record systems"
    assert LINE.group_title(Kind.THIRD_PARTY) == "Third parties"
    untitled = replace(LINE, title="", group_titles={})
    assert untitled.called == "the line"
    assert untitled.group_title(Kind.SERVICE) == "Services"


def test_the_installed_line_is_the_one_run_when_none_is_named() -> None:
    assert registered().keys() == {"becoming-a-teacher"}
    assert load_line("") is BECOMING_A_TEACHER
    assert load_line("becoming-a-teacher").topology is LINE


def test_an_unknown_line_is_refused_naming_those_registered() -> None:
    with pytest.raises(UnknownLineError, match=r"'shop'.*registered: becoming-a-teacher"):
        load_line("shop")


def test_the_cli_refuses_an_unknown_line_without_a_traceback() -> None:
    result = CliRunner().invoke(app, ["topology"], env={"SERVICELINE_LINE": "shop"})
    assert result.exit_code == 1
    assert "no line is registered as 'shop'" in result.output
    assert "Traceback" not in result.output


def test_a_package_registers_a_line_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "shop_line.py").write_text(
        textwrap.dedent(
            """
            from serviceline.runtime.app import ServiceApp
            from serviceline.model.lines import Line
            from serviceline.model.topology import Entity, Kind, Service, Topology

            class NoWorkloads:
                def check(self, source):
                    raise ValueError(f"workload: {source!r}: the shop has none")

                def events(self, source, clients, api_token, *, seed, start, end):
                    self.check(source)

            async def seed(clients, control, api_token, size="small", seed=1, progress=None):
                return {}

            async def already_seeded(clients, api_token):
                return False

            LINE = Line(
                topology=Topology(
                    (Service("catalogue", "The catalogue", Kind.SERVICE, 9100),),
                    (Entity("product", ("catalogue",), "sku"),),
                    (),
                    (),
                    (),
                ),
                services=[ServiceApp(name="catalogue")],
                seed=seed,
                already_seeded=already_seeded,
                workloads=NoWorkloads(),
            )
            """
        )
    )
    info = tmp_path / "shop_line-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-line\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINTS}]\nshop = shop_line:LINE\n")
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "serviceline"), "topology"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "SERVICELINE_LINE": "shop"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "catalogue" in shown.stdout
    assert "publish" not in shown.stdout


def test_the_scenarios_and_studies_built_in_are_the_lines_not_the_kernels() -> None:
    assert sorted(str(p) for p in KERNEL.rglob("*.yaml")) == []
    runner = CliRunner()
    shop = str(Path(ROOT) / "examples" / "shop" / "line.yaml")
    for command, own in (("scenario", "journey"), ("study", "updated-since-vs-feed")):
        assert own in runner.invoke(app, [command, "list"]).output
        listed = runner.invoke(app, [command, "list"], env={"SERVICELINE_LINE": shop})
        assert listed.exit_code == 0, listed.output
        assert own not in listed.output
    refused = runner.invoke(app, ["study", "run", "cycle"], env={"SERVICELINE_LINE": shop})
    assert refused.exit_code != 0
    assert "no built-in study or file of that name; built-in: none" in refused.output


def test_a_line_declares_each_service_its_topology_names_and_no_other() -> None:
    line = current_line()
    with pytest.raises(ValueError, match=r"^services: the line declares \['gias'\]"):
        replace(line, services=[line.service("gias")])
    with pytest.raises(KeyError, match="no service named 'shop'"):
        line.service("shop")
