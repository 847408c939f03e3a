"""Every command README.md prints in a ```sh block, run as printed through bash, in order.

The test gives bash what a user's shell has after `make up`: a working directory holding
`.venv` (the project's own) and `.state` (the state folder of a line this test starts, seeded,
with the default tokens), the variables earlier commands assigned (`A`, `W`, `UUID`), and the
user's own files the README names (`my-story.yaml`, a built-in story, and the example lines in
`examples/`). The line runs on a free
range of ports: `serviceline` finds it through `.state` by itself, and in every other command
only a port of the line (`localhost:8104`, `127.0.0.1:8100`) is rewritten, by adding the test
line's port offset. Nothing else in a command is changed.

A scenario run that starts a line of its own shares nothing with the test's line but the state
folder's `scenarios/`, so those runs go one after another, in the README's order, in a thread of
their own from the start, while the other commands run in the README's order on the test's line:
the test takes less time that way.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from lines.becoming_a_teacher.line import BECOMING_A_TEACHER
from lines.becoming_a_teacher.topology import LINE
from serviceline.dashboard.process import start_dashboard
from serviceline.model.topology import Kind
from serviceline.stack.launcher import (
    LINE_PORTS,
    LineConfig,
    RunningLine,
    free_port_offset,
    start_line,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
README = Path(__file__).parents[2] / "README.md"
VARIABLES = "variables.sh"

# each with why it cannot run here; every other command must
SKIPPED = {
    "make up": "runs the line in the foreground until Ctrl-C; this test starts the same line",
    "make test": "the whole suite, this test included",
    ".venv/bin/serviceline up --fresh --size medium --seed 7": (
        "runs the line in the foreground until Ctrl-C, as `make up` does"
    ),
    ".venv/bin/serviceline up --lineage-url http://localhost:5000": (
        "runs the line in the foreground until Ctrl-C, and Marquez is not here "
        "(tests/telemetry/test_lineage.py posts to a local endpoint)"
    ),
    ".venv/bin/serviceline up --lineage-file .state/lineage.jsonl": (
        "runs the line in the foreground until Ctrl-C (tests/e2e/test_lineage.py runs a line so)"
    ),
    "docker compose up --build": "needs a Docker engine (make compose-smoke runs the stack)",
    "docker compose down -v": "needs a Docker engine (make compose-smoke runs the stack)",
    "docker compose --profile observability up --build": (
        "needs a Docker engine and the Prometheus, Grafana and Jaeger images"
    ),
    "docker compose --profile observability up -d jaeger": (
        "needs a Docker engine and the Jaeger image"
    ),
    ".venv/bin/serviceline up --otlp-endpoint http://localhost:4318": (
        "runs the line in the foreground until Ctrl-C, as `make up` does"
    ),
    ".venv/bin/serviceline study run cycle": "a whole recruitment cycle on a medium line",
    ".venv/bin/serviceline study run my-study.yaml --span 4w --size small --out results/": (
        "four simulated weeks under the workload"
    ),
    ".venv/bin/serviceline study compare updated-since-vs-feed": (
        "four simulated weeks of the medium line for each variant"
    ),
    ".venv/bin/serviceline study compare a.yaml b.yaml:feed": (
        "two studies of the user's own, a whole span each"
    ),
    ".venv/bin/pytest tests/consumer/test_copier.py --database postgresql": (
        "needs a PostgreSQL server (make test-postgres runs it)"
    ),
    ".venv/bin/pytest --database postgresql --postgres-server "
    "postgresql://me:pw@db:5432/postgres ...": "a PostgreSQL server of the user's own",
}


@dataclass(frozen=True)
class Expected:
    """What a command must do beyond exiting 0: its exit code, and what it prints."""

    code: int = 0
    shows: tuple[str, ...] = ()
    hides: tuple[str, ...] = ()


RENAMED = "Mathematics with physics"
# what the README says a command prints or does; every other command need only exit 0
EXPECTED = {
    ".venv/bin/serviceline stop find": Expected(shows=("stopped find",)),
    ".venv/bin/serviceline start find": Expected(shows=("started find",)),
    ".venv/bin/serviceline restart find": Expected(shows=("restarted find",)),
    ".venv/bin/serviceline clock show": Expected(shows=("simulated clock", "2026-10-05")),
    ".venv/bin/serviceline sync publish.course.apply": Expected(shows=("publish.course.apply",)),
    "curl -s -o /dev/null -w '%{http_code}\\n' localhost:8104/records/application": Expected(
        shows=("401",)
    ),
    "curl -s -H \"$A\" 'localhost:8104/records/application?limit=1'": Expected(
        shows=('"entity":"application"',)
    ),
    "curl -s -H \"$A\" 'localhost:8105/copies/application?limit=1'": Expected(
        shows=('"source_version"',)
    ),
    "curl -s localhost:8104/copies/course/$UUID": Expected(hides=(RENAMED,)),
    "curl -s -X PATCH -H 'content-type: application/json' localhost:8104/copies/course/$UUID"
    " -d '{}'": Expected(
        shows=(
            '{"detail":"course is owned by publish; apply holds a read-only copy and never'
            " passes changes back.",
        )
    ),
    'curl -s -X PATCH -H "$W" -H \'content-type: application/json\' -d \'{"nmae": "Art"}\''
    " localhost:8102/courses/$UUID": Expected(
        shows=('"type":"extra_forbidden","loc":["body","nmae"]',)
    ),
    # Register's course copy holds the old name until its 03:00 import
    ".venv/bin/serviceline drift --fail-on stale=0 --fail-on missing=10": Expected(code=1),
    ".venv/bin/serviceline drift --html drift.html": Expected(shows=("drift",)),
    ".venv/bin/serviceline drift --history": Expected(shows=("drift history",)),
    ".venv/bin/serviceline trace course $UUID": Expected(shows=("publish wrote version",)),
    ".venv/bin/serviceline scenario list": Expected(shows=("course-renamed",)),
    # on the seeded line: its counts beside the seed's own partnerships
    ".venv/bin/serviceline scenario run partnership-conflict --url http://127.0.0.1:8100": (
        Expected(shows=("besides the line's own", "PASS partnership-conflict"))
    ),
}
# the second read of a copy after the rename: the README says it is renamed by then
AFTER_SYNC = Expected(shows=(RENAMED,))


def commands(readme: str) -> list[str]:
    """Each command of each ```sh block as printed, comment-only lines left out."""
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", readme, flags=re.M | re.S):
        # a continued line is one command; bash is given its lines as printed
        for command in re.split(r"(?<!\\)\n", block):
            if command.strip() and not command.lstrip().startswith("#"):
                found.append(command)
    return found


def bare(command: str) -> str:
    """The command without its trailing comment and continuations, to name it by."""
    for end in (m.start() for m in re.finditer(r"\s#", command)):
        before = command[:end]
        if before.count("'") % 2 == 0 and before.count('"') % 2 == 0:
            command = before
            break
    return re.sub(r"\s*\\\n\s*", " ", command).strip()


def moved(command: str, offset: int) -> str:
    """The command with each port of the line moved by `offset`; nothing else changes."""

    def port(match: re.Match[str]) -> str:
        number = int(match[2])
        return f"{match[1]}:{number + offset if number in LINE_PORTS else number}"

    return re.sub(r"\b(localhost|127\.0\.0\.1):(\d+)\b", port, command)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A user's checkout as bash sees it after `make install`: `.venv` and their own files."""
    (tmp_path / ".venv").symlink_to(sys.prefix)
    assert BECOMING_A_TEACHER.scenarios is not None
    shutil.copy(BECOMING_A_TEACHER.scenarios / "course-renamed.yaml", tmp_path / "my-story.yaml")
    shutil.copytree(README.parent / "examples", tmp_path / "examples")
    (tmp_path / VARIABLES).touch()
    return tmp_path


@pytest.fixture
def readme_line(workdir: Path) -> Iterator[RunningLine]:
    """The line `make up` runs, its dashboard included, with its tokens, on free ports, its
    state in `.state`."""
    names = [s.name for s in LINE.services if s.kind is not Kind.RECORD_SYSTEM]
    config = LineConfig(workdir / ".state", port_offset=free_port_offset())
    line = start_line(config, names, restart=True, topology=LINE)
    try:
        dashboard = start_dashboard(config)
        try:
            yield line
        finally:
            dashboard.stop()
    finally:
        line.stop()


Done = tuple[subprocess.CompletedProcess[str], float]
# a scenario run on a line of its own: not on the test's line (no --url)
OWN_LINE = re.compile(r"\.venv/bin/serviceline scenario (run|compare) (?!.*--url)")


def timed(bash: Callable[[str], subprocess.CompletedProcess[str]], command: str) -> Done:
    began = time.monotonic()
    return bash(command), time.monotonic() - began


def shell(workdir: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """bash as the user's terminal: earlier assignments kept, no serviceline settings set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICELINE_")}

    def run(command: str) -> subprocess.CompletedProcess[str]:
        script = f". ./{VARIABLES}\n{command}"
        assigned = re.match(r"([A-Z_]+)=", command)
        if assigned:
            script += f"\ndeclare -p {assigned[1]} >> {VARIABLES}"
        return subprocess.run(
            ["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True
        )

    return run


def test_every_readme_command_runs_as_printed(readme_line: RunningLine, workdir: Path) -> None:
    printed = commands(README.read_text(encoding="utf-8"))
    names = [bare(command) for command in printed]
    assert not set(SKIPPED) - set(names), "a skipped command the README no longer prints"
    bash = shell(workdir)
    offset = readme_line.config.port_offset
    reads_of_copy = 0
    todo: list[tuple[str, Expected, str]] = []
    for command, name in zip(printed, names, strict=True):
        if name in SKIPPED:
            continue
        expected = EXPECTED.get(name, Expected())
        if name == "curl -s localhost:8104/copies/course/$UUID":
            reads_of_copy += 1
            expected = expected if reads_of_copy == 1 else AFTER_SYNC
        todo.append((name, expected, moved(command, offset)))
    ran: dict[int, Future[Done]] = {}
    with ThreadPoolExecutor(max_workers=1) as own_lines:
        for index, (name, _, command) in enumerate(todo):
            if OWN_LINE.match(name):
                ran[index] = own_lines.submit(timed, bash, command)
        seeded = bash(".venv/bin/serviceline seed")  # `make up` seeds a new line
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        again = bash(".venv/bin/serviceline seed --seed 7")
        assert again.returncode == 1
        assert "already holds a seed" in again.stdout
        for index, (_, _, command) in enumerate(todo):
            if index not in ran:
                ran[index] = Future()
                ran[index].set_result(timed(bash, command))
    wrong: list[str] = []
    for index, (name, expected, _) in enumerate(todo):
        finished, took = ran[index].result()
        said = (
            f"{name}: exit {finished.returncode} ({took:.0f} s)\n{finished.stdout}{finished.stderr}"
        )
        if finished.returncode != expected.code:
            wrong.append(said)
        wrong += [f"no {w!r} in {said}" for w in expected.shows if w not in finished.stdout]
        wrong += [f"{w!r} in {said}" for w in expected.hides if w in finished.stdout]
    # how long each command took, shown with the test's output (pytest -rP)
    for index, (name, _, _) in enumerate(todo):
        print(f"{ran[index].result()[1]:6.1f} s  {name}")
    assert not wrong, "\n\n".join(wrong)
    assert (workdir / "drift.html").is_file()


def test_commands_are_read_as_a_shell_reads_them() -> None:
    readme = "```sh\nmake up   # it's up\n# a comment\ncurl -d '{\"a\": 1}' \\\n   x:8104\n```\n"
    printed = commands(readme)
    assert printed == ["make up   # it's up", "curl -d '{\"a\": 1}' \\\n   x:8104"]
    assert [bare(command) for command in printed] == ["make up", "curl -d '{\"a\": 1}' x:8104"]
    assert bare("curl -w '%{x} #1' y  # z") == "curl -w '%{x} #1' y"
    assert moved("curl 'localhost:8104/x' http://127.0.0.1:8100 db:5432", 3000) == (
        "curl 'localhost:11104/x' http://127.0.0.1:11100 db:5432"
    )
