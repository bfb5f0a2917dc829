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
    from ..run.files import RunDir
    from ..track import summaries
    from ..track.event_file import append_records
    from . import diagnose

    try:
        findings = diagnose(run_dir)
        # Onto the end of the training's own event file (its writer is closed): the run keeps one file.
        append_records(RunDir(run_dir).event_files()[-1], [(summaries.text(TEXT_TAG, format_markdown(findings)), step)])
    except Exception as e:  # noqa: BLE001 - the run itself is complete and saved
        print(f"doctor: could not check {run_dir}: {type(e).__name__}: {e}", file=sys.stderr)
        return []
    return findings


def print_serious(findings: list[Finding] | None, run_dir: str | Path) -> None:
    """One line per high or medium finding, with its first fix, and where to read them all; or that
    there are none. Nothing for a run the doctor did not check (None: no TensorBoard events)."""
    if findings is None:
        return
    serious = [f for f in findings if f.severity in PRINTED]
    for f in serious:
        print(one_line(f))
    if serious:
        print(f"all findings: zerotune doctor {run_dir}")
    elif findings:
        print(f"doctor: no serious findings ({len(findings)} minor: zerotune doctor {run_dir})")
    else:
        print("doctor: no findings")
