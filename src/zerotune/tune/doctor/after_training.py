"""The doctor at the end of `train` and `finetune`: findings into TensorBoard's Text tab, the serious ones printed."""

from __future__ import annotations

import sys
from pathlib import Path

from .findings import Finding, format_markdown, one_line

TEXT_TAG = "doctor/findings"
PRINTED = ("high", "medium")


def check_finished_run(run_dir: str | Path, step: int) -> list[Finding]:
    """Diagnose a run that just finished and write every finding to its event files at ``step``.

    A failure here must not cost the user a finished run: it is reported in one line and no
    findings are returned.
    """
    from ...track.sink import EventSink
    from . import diagnose

    try:
        findings = diagnose(run_dir)
        with EventSink(run_dir, record_memory=False) as sink:  # a file of its own: training's sink is closed
            sink.add_text(TEXT_TAG, format_markdown(findings), step)
    except Exception as e:  # noqa: BLE001 - the run itself is complete and saved
        print(f"doctor: could not check {run_dir}: {type(e).__name__}: {e}", file=sys.stderr)
        return []
    return findings


def print_serious(findings: list[Finding], run_dir: str | Path) -> None:
    """One line per high or medium finding, with its first fix, and where to read them all (if there are any)."""
    serious = [f for f in findings if f.severity in PRINTED]
    for f in serious:
        print(one_line(f))
    if findings:
        print(f"all findings: zerotune doctor {run_dir}")
