"""The run's `best` and `last` checkpoints as training keeps them: a best held until the next `last`,
the writer thread, the first save.

How the ranks of a job take part in a save is the runner's (`train/runner.py`); what is written
is decided here and in the Trainer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..run.files import RunDir
from . import checkpoint as ckpt


class Checkpoints:
    """Best and last of one run directory.

    A new best is copied when it is measured and written with the next `last`, so the best on disk
    always matches what `last` records. The run's first save writes both at once: a kill never
    leaves a best without a last.
    """

    def __init__(self, run: RunDir):
        self.run = run
        self.writer = ckpt.CheckpointWriter()
        self.pending_best = None  # (tensors, aliases, info): best weights copied, not yet on disk
        self.last_save = time.monotonic()  # when `last` was last queued (saves are throttled by time)
        self._saved = False  # whether this process has submitted a save yet (see `start_last`)

    def start_last(self) -> tuple | None:
        """Begin a save of `last`: a pending best is queued now, or returned when it must be written
        together with this first `last` (`submit_last`)."""
        # Asked once: while that first save is still being written, `checkpoints/` does not exist yet.
        first = self.pending_best is not None and not self._saved and ckpt.first_save(self.run.checkpoints)
        self._saved = True
        best, self.pending_best = self.pending_best, None
        if best is not None and not first:
            self.writer.submit(self.run.checkpoint("best"), *best)
        self.last_save = time.monotonic()
        return best if first else None

    def submit_last(self, last: tuple, with_best: tuple | None) -> None:
        """Queue `last` (`save_checkpoint`'s arguments after the path), with the best `start_last` returned."""
        if with_best is not None:
            self.writer.submit(self.run.checkpoints, with_best, last, write=ckpt.save_first_checkpoints)
        else:
            self.writer.submit(self.run.checkpoint("last"), *last)

    def submit_best(self) -> None:
        """Queue a pending best on its own (sharded saves, which write `last` themselves)."""
        if self.pending_best is not None:
            self.writer.submit(self.run.checkpoint("best"), *self.pending_best)
            self.pending_best = None
        self.last_save = time.monotonic()

    def write_last(self, weights: tuple, state: dict, tensors: dict, tmp: Path) -> None:
        """Write `last` now, into `tmp` that already holds other parts (FSDP's shards), after queued writes."""
        self.writer.wait()
        ckpt.save_checkpoint(self.run.checkpoint("last"), *weights, state, tensors, tmp=tmp)


@dataclass
class SaveJob:
    """What the Trainer hands its runner at each save of `last`; the runner takes each part in its order.

    Attributes:
        checkpoints: the run's best and last.
        model: the trained module.
        optimizer: its optimizer.
        epoch_sums: this rank's running [loss sum, micro-batches] of the current epoch.
        check_sound: raises `Diverged` rather than let an unsound state replace `last`.
        training_state: (every rank's epoch sums, with the optimizer's state) -> (state.json's
            content, tensors): everything but the weights, copied on the training thread.
    """

    checkpoints: Checkpoints
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    epoch_sums: list[float]
    check_sound: Callable[[], None]
    training_state: Callable[[dict, bool], tuple[dict, dict[str, torch.Tensor]]]


def epoch_sums(rows: list[list[float]]) -> dict:
    """state.json's ``epoch_sums`` from every rank's [loss sum, micro-batches], in rank order."""
    return {"loss_sums": [r[0] for r in rows], "micro_batches": [int(r[1]) for r in rows]}
