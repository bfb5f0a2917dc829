"""TensorBoard for a distillation: the two terms of the loss, and what the teacher is.

Scalars ``train/distill_kl`` (T² · KL, before the alpha weight) and ``train/distill_hard`` (the
hard-label loss, before 1 − alpha), each the mean over the steps since the last point, at the
interval of ``train/loss``. ``val/teacher_agreement`` comes with the other validation metrics
(see `task.DistillTask`). Text ``distill/setup``: teacher, sizes, T, alpha and how the logits are made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..train.callbacks import Callback, TrainState
from .task import DistillTask

if TYPE_CHECKING:
    from ..track.tensorboard import TensorBoardLogger


class DistillBoard(Callback):
    """Writes through the run's TensorBoard callback's sink, so one event file holds every point.

    Args:
        board: the run's TensorBoardLogger (called before this callback).
        task: the distillation task, whose loss terms are read.
        summary: the rows of the ``distill/setup`` table (name, value).
        every: steps between points (``log.scalars_every``).
    """

    def __init__(self, board: TensorBoardLogger, task: DistillTask, summary: dict, every: int):
        self.board, self.task, self.summary, self.every = board, task, summary, every

    def on_fit_start(self, state: TrainState) -> None:
        if state.resumed_from_step is None:
            rows = "\n".join(f"| {k} | {v} |" for k, v in self.summary.items())
            self.board.sink.add_text("distill/setup", "| | |\n|---|---|\n" + rows, 0)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            terms = self.task.take_terms()
            if terms is not None:
                self.board.sink.scalars(state.step, (("train/distill_kl", terms[0]), ("train/distill_hard", terms[1])))
