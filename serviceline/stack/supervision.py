"""Runs a line's services under supervisord: restarted when they die, driven over its socket."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from supervisor import childutils
from supervisor.xmlrpc import SupervisorTransport

SOCKET = "supervisor.sock"
CONFIG = "supervisord.conf"
# every state each service went through, as supervisord announced it, a JSON object a line
EVENTS = "supervision.jsonl"
LISTENER = "supervision-events"
# one group for every service, so that supervisord stops them all at once, not one by one
GROUP = "line"
# a service that dies sooner than this after starting died quickly: supervisord starts it again
# after a back-off of 1 s, then 2 s, 3 s..., and gives up after START_RETRIES quick deaths in a
# row; one that dies later is started again at once
START_SECONDS = 5
START_RETRIES = 3
STOP_SECONDS = 10
# the states in which a service is, or will soon be, running
UP = frozenset({"STARTING", "RUNNING", "BACKOFF"})
# the states of a service that died and is not being started again
DEAD = frozenset({"EXITED", "FATAL"})


class SupervisionError(RuntimeError):
    pass


def socket_path(state_dir: Path) -> Path:
    """supervisord's socket: in the state folder, unless its path is too long for a socket.

    A unix socket's path holds at most 107 bytes, and supervisord binds a name 8 longer first;
    a deep state folder (a test's, say) gets a short name in the system's temporary folder,
    the same for the same folder.
    """
    path = state_dir.resolve() / SOCKET
    if len(os.fsencode(path)) <= 90:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"serviceline-{digest}.sock"


@dataclass(frozen=True)
class Program:
    """One process supervisord runs: a service, by its name, and the command that runs it."""

    name: str
    command: Sequence[str]
    # its own variables, beside the environment every program shares (which holds the secrets,
    # kept out of the configuration file)
    environment: Mapping[str, str] = field(default_factory=dict)


def config_text(state_dir: Path, programs: Sequence[Program], *, restart: bool) -> str:
    """supervisord's configuration for a line: its socket, logs and pid file in `state_dir`."""
    state = state_dir.resolve()
    logs = state / "logs"
    sections: list[tuple[str, dict[str, object]]] = [
        ("unix_http_server", {"file": socket_path(state), "chmod": "0700"}),
        (
            "supervisord",
            {
                "nodaemon": "true",
                "silent": "true",
                "logfile": logs / "supervisord.log",
                "pidfile": state / "supervisord.pid",
                "childlogdir": logs,
            },
        ),
        # `supervisorctl -c .state/supervisord.conf status` works too
        ("supervisorctl", {"serverurl": f"unix://{socket_path(state)}"}),
        (
            "rpcinterface:supervisor",
            {"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        (
            f"eventlistener:{LISTENER}",
            {
                "command": shlex.join([sys.executable, "-m", __name__, str(state / EVENTS)]),
                "events": "PROCESS_STATE",
                "stderr_logfile": logs / "supervision.log",
                "autorestart": "true",
            },
        ),
    ]
    for program in programs:
        # a line that does not restart (under test) shows a death at once, as it happened
        options = {
            "command": shlex.join(program.command),
            "autorestart": str(restart).lower(),
            "startsecs": START_SECONDS,
            "startretries": START_RETRIES if restart else 0,
            "stopsignal": "TERM",
            "stopwaitsecs": STOP_SECONDS,
            "redirect_stderr": "true",
            "stdout_logfile": logs / f"{program.name}.log",
            "stdout_logfile_maxbytes": 0,
        }
        if program.environment:
            options["environment"] = ",".join(
                f'{key}="{value}"' for key, value in program.environment.items()
            )
        sections.append((f"program:{program.name}", options))
    sections.append((f"group:{GROUP}", {"programs": ",".join(p.name for p in programs)}))
    # supervisord expands %(name)s in every value: a literal % is written %%
    return "".join(
        f"[{title}]\n"
        + "".join(f"{key}={str(value).replace('%', '%%')}\n" for key, value in options.items())
        + "\n"
        for title, options in sections
    )


@dataclass(frozen=True)
class ServiceState:
    """One service as its supervisor sees it, with how often it was restarted after dying."""

    name: str
    state: str  # supervisord's: STARTING, RUNNING, BACKOFF, STOPPING, STOPPED, EXITED, FATAL
    pid: int
    description: str  # e.g. "pid 12, uptime 0:01:02", "Exited too quickly (process log ...)"
    restarts: int = 0
    last_restart_at: datetime | None = None

    @property
    def given_up(self) -> bool:
        return self.state == "FATAL"

    @property
    def up(self) -> bool:
        return self.state in UP


class Supervisor:
    """The supervisord of one line, reached through the socket in its state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def _call(self, method: str, *args: Any) -> Any:
        # a connection per call: one is not to be shared between threads
        transport = SupervisorTransport(serverurl=f"unix://{socket_path(self.state_dir)}")
        try:
            with xmlrpc.client.ServerProxy("http://supervisord", transport=transport) as proxy:
                return getattr(proxy.supervisor, method)(*args)
        except xmlrpc.client.Fault as fault:
            raise SupervisionError(fault.faultString) from fault
        except OSError as error:
            raise SupervisionError(f"no supervisor answers in {self.state_dir}: {error}") from error
        finally:
            transport.close()

    @classmethod
    def launch(
        cls,
        state_dir: Path,
        programs: Sequence[Program],
        env: Mapping[str, str],
        *,
        restart: bool,
        timeout: float = 15.0,
    ) -> tuple[Supervisor, subprocess.Popen[bytes]]:
        """Start supervisord, and with it every program, and return once it answers."""
        config = state_dir / CONFIG
        config.write_text(config_text(state_dir, programs, restart=restart))
        (state_dir / EVENTS).unlink(missing_ok=True)
        with (state_dir / "logs" / "supervisord.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        supervisor = cls(state_dir)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(SupervisionError):
                if supervisor._call("getState")["statename"] == "RUNNING":
                    return supervisor, process
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                where = state_dir / "logs" / "supervisord.log"
                raise SupervisionError(f"supervisord did not start; see {where}")
            time.sleep(0.05)

    def pid(self) -> int:
        pid: int = self._call("getPID")
        return pid

    def states(self) -> dict[str, ServiceState]:
        restarts = read_restarts(self.state_dir / EVENTS)
        return {
            info["name"]: ServiceState(
                info["name"],
                info["statename"],
                info["pid"],
                info["description"],
                *restarts.get(info["name"], (0, None)),
            )
            for info in self._call("getAllProcessInfo")
            if info["group"] == GROUP
        }

    def start(self, name: str) -> None:
        self._call("startProcess", f"{GROUP}:{name}", False)

    def stop(self, name: str, *, kill: bool = False) -> None:
        """Stop one service and wait till it has: with `kill`, as a crash stops it."""
        pid = self.states()[name].pid
        if not kill:
            self._call("stopProcess", f"{GROUP}:{name}", True)
            return
        # frozen first, so it does nothing more, not even its own clean shutdown: supervisord's
        # stop marks it as stopped on purpose, and SIGKILL ends it where it stands
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
        with contextlib.suppress(SupervisionError):
            self._call("stopProcess", f"{GROUP}:{name}", False)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_SECONDS
        while self.states()[name].state not in {"STOPPED", *DEAD}:
            if time.monotonic() > deadline:
                raise SupervisionError(f"{name} did not stop within {STOP_SECONDS}s")
            time.sleep(0.05)

    def shutdown(self) -> None:
        self._call("shutdown")


def read_restarts(path: Path) -> dict[str, tuple[int, datetime | None]]:
    """How often each service was started again after it died, and when it last was."""
    restarts: dict[str, tuple[int, datetime | None]] = {}
    if not path.exists():
        return restarts
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["to"] == "STARTING" and event["from"] in {"BACKOFF", "EXITED"}:
            count, _ = restarts.get(event["name"], (0, None))
            restarts[event["name"]] = (count + 1, datetime.fromisoformat(event["at"]))
    return restarts


def listen(events: Path, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """supervisord's event listener: note every state change, and say in words what happened."""
    while True:
        headers, payload = childutils.listener.wait(stdin, stdout)
        state = headers["eventname"].removeprefix("PROCESS_STATE_")
        fields = childutils.get_headers(payload)
        if fields["groupname"] == GROUP:
            at = datetime.now(UTC).isoformat()
            event = {"at": at, "name": fields["processname"], "from": fields["from_state"]}
            with events.open("a") as out:
                out.write(json.dumps({**event, "to": state}) + "\n")
            said = _words(fields["processname"], fields["from_state"], state, fields)
            if said:
                print(f"{at} {said}", file=sys.stderr, flush=True)
        childutils.listener.ok(stdout)


def _words(name: str, before: str, state: str, fields: Mapping[str, str]) -> str | None:
    if state == "EXITED" and fields.get("expected") == "0":
        return f"{name} died (pid {fields['pid']}); starting it again"
    if state == "BACKOFF":
        return f"{name} died {START_SECONDS}s or less after starting; trying again after a pause"
    if state == "FATAL":
        return f"gave up on {name}: it kept dying as it started; the rest of the line runs on"
    if state == "STARTING" and before in {"BACKOFF", "EXITED"}:
        return f"restarting {name}"
    return None


if __name__ == "__main__":
    listen(Path(sys.argv[1]))
