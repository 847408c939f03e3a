"""Starting a line: the ports it picks and what it says when a service dies on the way up."""

from pathlib import Path

import pytest

from lines.becoming_a_teacher.topology import LINE
from serviceline.stack.launcher import (
    LINE_PORTS,
    LaunchError,
    LineConfig,
    ephemeral_port_start,
    free_port_offset,
    start_line,
)
from serviceline.testing import ADMIN_TOKEN, API_TOKEN

pytestmark = pytest.mark.e2e


def test_a_free_offset_keeps_every_port_below_the_ephemeral_range() -> None:
    for _ in range(50):
        offset = free_port_offset()
        assert offset + max(LINE_PORTS) < ephemeral_port_start()


def test_a_service_that_dies_at_start_up_is_named_with_the_end_of_its_log(tmp_path: Path) -> None:
    config = LineConfig(
        tmp_path,
        admin_token=ADMIN_TOKEN,
        api_token=API_TOKEN,
        database_urls={"gias": f"sqlite:///{tmp_path}/no/such/folder/gias.db"},
        port_offset=free_port_offset(),
    )
    with pytest.raises(LaunchError) as raised:
        start_line(config, ["gias"], timeout=60, topology=LINE)
    said = str(raised.value)
    assert said.startswith("service exited during start-up: gias")
    assert "--- the end of gias.log" in said
    assert "unable to open database file" in said
