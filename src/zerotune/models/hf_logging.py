"""transformers, quiet: no progress bars or load reports on a command's output."""

from __future__ import annotations


def quiet_transformers() -> None:
    """No download progress bars or load reports: nothing is downloaded, and unused weights are expected."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
