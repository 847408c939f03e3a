"""The commands' console: piped or redirected, a line is printed whole."""

import pytest
from rich.table import Table

from serviceline.output import console


def test_a_url_in_a_table_is_printed_whole_when_output_goes_to_a_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "http://127.0.0.1:8104/copies/course/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/docs"
    table = Table()
    for column in ("service", "kind", "URL", "API docs"):
        table.add_column(column)
    table.add_row("apply — Apply for teacher training", "service", url, url)
    piped = console()
    assert not piped.is_terminal
    piped.print(table)
    piped.print(f"Dashboard: {url} " * 2)
    shown = capsys.readouterr().out
    assert shown.count(url) == 4, shown
