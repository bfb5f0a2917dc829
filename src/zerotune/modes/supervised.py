"""Supervised learning: classification and regression of images, tables and text."""

from __future__ import annotations

from pathlib import Path

from ..tasks.supervised import make_task
from ..track.tensorboard import TensorBoardLogger
from .base import Mode, PreparedRun, refuse_grad_checkpointing


class Supervised(Mode):
    """The base mode of every run that no other base mode claims."""

    base = True

    @classmethod
    def applies(cls, config) -> bool:
        return True

    def task(self, config, data):
        # the training split's class indices: what train.class_weights = "balanced" counts
        return make_task(data.meta, config.train, config.data, data.train.y)

    def setup_model(self, run: PreparedRun) -> None:
        refuse_grad_checkpointing(run.config)

    def views(self, run: PreparedRun, run_dir: Path, shown: list) -> list:
        return [TensorBoardLogger(run_dir, run.config, run.data, run.task)]
