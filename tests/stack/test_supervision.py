"""supervisord's configuration for a native line, written from the launcher's commands."""

import configparser
from pathlib import Path

from serviceline.stack.supervision import GROUP, Program, config_text, socket_path


def parsed(text: str) -> configparser.RawConfigParser:
    config = configparser.RawConfigParser()
    config.read_string(text)
    return config


def test_each_service_is_a_program_of_one_group_restarted_only_when_asked(tmp_path: Path) -> None:
    programs = [Program("publish", ["python", "-m", "uvicorn"]), Program("find", ["run", "50%"])]
    restarting = parsed(config_text(tmp_path, programs, restart=True))
    assert restarting.get(f"group:{GROUP}", "programs") == "publish,find"
    assert restarting.get("program:find", "autorestart") == "true"
    assert restarting.get("program:find", "startretries") == "3"
    # supervisord would read %(...)s in a value as a name to expand
    assert restarting.get("program:find", "command") == "run 50%%"
    assert restarting.get("unix_http_server", "file") == str(tmp_path.resolve() / "supervisor.sock")

    under_test = parsed(config_text(tmp_path, programs, restart=False))
    assert under_test.get("program:publish", "autorestart") == "false"
    assert under_test.get("program:publish", "startretries") == "0"


def test_a_state_folder_too_deep_for_a_socket_gets_a_short_one_of_its_own(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["nested-folder"] * 8)
    path = socket_path(deep)
    assert len(str(path)) < 100
    assert path == socket_path(deep)
    assert path != socket_path(deep / "other")
    assert socket_path(tmp_path) == tmp_path.resolve() / "supervisor.sock"
