"""The console every command prints to."""

from rich.console import Console

# wide enough for a URL, an edge name and a table's figures on one line
PIPED_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    """A terminal's own width; piped or redirected, lines whole instead of cut at 80 columns."""
    shown = Console(stderr=stderr)
    return shown if shown.is_terminal else Console(stderr=stderr, width=PIPED_WIDTH, soft_wrap=True)
