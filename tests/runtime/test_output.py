"""The commands' console: piped or redirected, a line is printed whole."""

from pathlib import Path

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.cli import services_table
from serviceline.output import console
from serviceline.stack.launcher import LineConfig


def test_every_url_make_up_prints_is_whole_when_its_output_goes_to_a_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = LineConfig(Path(), port_offset=50000)
    names = [service.name for service in LINE.services]
    piped = console()
    assert not piped.is_terminal
    piped.print(services_table(config, names))
    piped.print(f"Dashboard: http://127.0.0.1:58100 and {'more ' * 40}")
    shown = capsys.readouterr().out
    for service in LINE.services:
        assert f"{config.url(service)}/docs" in shown, shown
    assert "http://127.0.0.1:58100 and more" in shown
