"""Distillation: a student learns from a teacher run's soft targets (``distill.teacher``; `distill/`)."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import UserError
from .base import Mode, PreparedRun


class Distill(Mode):
    """Added to a supervised run: the teacher's logits ride in each training batch."""

    suffix = "-distill"

    def __init__(self):
        self.teacher = None

    @classmethod
    def applies(cls, config) -> bool:
        from ..distill.setup import is_distill

        return is_distill(config)

    def adapt_data(self, run: PreparedRun) -> None:
        """The teacher sees each augmented batch, so the batches augment themselves and the trainer gets no augmenter."""
        from ..distill.setup import attach_teacher

        _check_batches(run.config)
        run.data, run.task, self.teacher = attach_teacher(run.config, run.data, run.task, run.augment, run.device)
        run.augment = None

    def views(self, run: PreparedRun, run_dir: Path, shown: list) -> list:
        from ..distill.board import DistillBoard
        from ..distill.setup import setup_summary

        config = run.config
        summary = setup_summary(config.distill, self.teacher, run.model, run.data.train)
        return [DistillBoard(shown[0], run.task, summary, config.log.scalars_every)]

    def report(self, run: PreparedRun, run_dir: Path, metrics: dict, step: int) -> None:
        from ..distill.setup import distill_metrics

        metrics["distill"] = distill_metrics(run.config.distill, self.teacher, run.model, run.data, run.device)


def _check_batches(config: Config) -> None:
    """A distillation's batches carry the teacher's logits for their own examples: they cannot be mixed or resampled."""
    if config.data.augment.mixing:
        raise UserError("distill: data.augment.mixup_alpha and cutmix_alpha are not supported with a teacher "
                        "(its logits belong to unmixed examples); allowed: 0")
    if config.train.sampler == "balanced":
        raise UserError('distill: train.sampler = "balanced" is not supported with a teacher; allowed: "shuffle"')
    from ..distributed.env import current

    if current() is not None:
        raise UserError("distill: several processes (--nproc, torchrun) are not supported with a teacher yet; "
                        "run it in one process")
