"""The TensorBoard callback: scalars every N steps, evaluation metrics, config and layout."""

from __future__ import annotations

from pathlib import Path

from ..train.callbacks import Callback, TrainState
from .scalars import ScalarQueue


class TensorBoardLogger(Callback):
    """Writes train/val curves, learning rate, gradient norm and throughput with tensorboardX.

    Only rank 0 should be given this callback.
    """

    def __init__(self, run_dir: Path, config, data, task):
        self.run_dir = Path(run_dir)
        self.every = config.log.scalars_every
        self.config_yaml = config.to_yaml()
        self.data, self.task = data, task
        self.writer = None
        self.scalars: ScalarQueue | None = None

    def on_fit_start(self, state: TrainState) -> None:
        from tensorboardX import SummaryWriter

        # purge_step hides events a killed run wrote after its last checkpoint, so a resumed run's
        # curves continue without a duplicate tail.
        purge = state.step if state.resumed_from_step is not None else None
        self.writer = SummaryWriter(logdir=str(self.run_dir), purge_step=purge, flush_secs=10)
        self.scalars = ScalarQueue(self.writer)
        if purge is None:
            if self.config_yaml:
                self.writer.add_text("config", "```yaml\n" + self.config_yaml + "\n```", 0)
            self.writer.add_custom_scalars(_layout())

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every:
            return
        add, step = self.scalars.add, state.step
        add("train/loss", state.loss, step)
        add("train/lr", state.lr, step)
        if state.grad_norm is not None:
            add("train/grad_norm", state.grad_norm, step)
        add("perf/samples_per_sec", state.samples_per_sec, step)
        add("perf/step_time_ms", state.step_time * 1000, step)

    def on_eval_end(self, state: TrainState) -> None:
        for tag, value in state.metrics.items():
            self.scalars.add(tag, value, state.step)
        self.scalars.add("train/epoch", state.epoch, state.step)

    def on_fit_end(self, state: TrainState) -> None:
        if self.writer is not None:
            self.scalars.close()
            self.writer.close()


def _layout() -> dict:
    """Custom-scalars charts that put train and val curves of a metric on one plot."""
    return {
        "zerotune": {
            "loss": ["Multiline", ["train/loss", "train/epoch_loss", "val/loss"]],
            "accuracy / r2": ["Multiline", ["val/accuracy", "val/r2"]],
            "learning rate": ["Multiline", ["train/lr"]],
            "gradient norm": ["Multiline", ["train/grad_norm"]],
        }
    }
