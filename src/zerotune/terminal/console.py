"""The rich Console that commands print tables and results through."""

from __future__ import annotations

import errno
import sys

PIPED_WIDTH = 100_000  # no wrapping: a table cut into 80-column slivers can be neither read nor grepped


def console(min_width: int = 0):
    """A Console on stdout. In a terminal: its width (at least `min_width`, where a narrower one would
    squeeze numbers into ellipses; rich then lets long lines wrap). Piped or redirected: plain lines as
    long as they need, without colour."""
    from rich.console import Console

    if not sys.stdout.isatty():
        found = Console(width=PIPED_WIDTH, soft_wrap=True)
    else:
        found = Console()
        found = found if found.width >= min_width else Console(width=min_width)
    found.on_broken_pipe = _reader_gone  # rich would exit 1 on its own; the command line ends it as any other write
    return found


def _reader_gone() -> None:
    """What rich calls when stdout's reader has gone (`| head -1`): the BrokenPipeError, for the CLI to handle."""
    raise BrokenPipeError(errno.EPIPE, "stdout's reader has gone")
