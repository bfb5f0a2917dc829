"""Rules about the run's files: a checkpoint that is damaged, or too old to carry checksums."""

from __future__ import annotations

from .evidence import CHECKED, UNCHECKED, Evidence
from .findings import Finding


def damaged_checkpoint(ev: Evidence) -> list[Finding]:
    """A checkpoint with a file missing or changed since it was saved: eval, export, serve and resume refuse it."""
    found = []
    for name, state in ev.checkpoints.items():
        if state in (CHECKED, UNCHECKED):
            continue
        others = [o for o, s in ev.checkpoints.items() if o != name and s in (CHECKED, UNCHECKED)]
        fixes = ["restore the file from a copy of the run"]
        fixes += [f"zerotune eval {ev.run} --checkpoint {o}" for o in others]
        fixes.append("train again under another --name")
        found.append(Finding("damaged_checkpoint", "high", f"checkpoint {name} cannot be used: {state}",
                             {"checkpoint": name}, fixes))
    return found


def unchecked_checkpoint(ev: Evidence) -> list[Finding]:
    """A checkpoint saved before zerotune wrote checksums: damage to its files cannot be told from weights."""
    names = [name for name, state in ev.checkpoints.items() if state == UNCHECKED]
    if not names:
        return []
    return [Finding("unchecked_checkpoint", "info",
                    f"checkpoint {', '.join(names)} has no checksums (saved by an older zerotune): "
                    f"a damaged file in it would go unnoticed", {"unchecked": names},
                    ["continue it (train --resume) or fine-tune it: the new checkpoints carry checksums"])]
