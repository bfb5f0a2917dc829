"""TensorBoard for preference tuning: the DPO/IPO loss, the implicit rewards and the answers' log-probs.

Built on :class:`~zerotune.track.tensorboard.TensorBoardLogger` (loss, learning rate, gradient
norms, per-layer statistics, hparams). Every ``log.scalars_every`` steps the mean over the training
batches since the last point: ``train/rewards/chosen``, ``train/rewards/rejected``,
``train/rewards/margin``, ``train/rewards/accuracy`` (the share of pairs whose chosen answer has the
higher reward), ``train/logps/chosen`` and ``train/logps/rejected``; at each evaluation the same over
the whole validation split as ``val/...`` (the task's metrics, which `on_eval_end` writes).
"""

from __future__ import annotations

from ..train.callbacks import TrainState
from .tensorboard import TensorBoardLogger


class PreferenceBoard(TensorBoardLogger):
    """The TensorBoard callback of a preference-tuning run (arguments as TensorBoardLogger's)."""

    def __init__(self, run_dir, config, data, task):
        super().__init__(run_dir, config, data, task, background_views=False)

    def on_fit_start(self, state: TrainState) -> None:
        self.task.take_train_stats()  # what measuring before training (the fine-tune's baseline) left
        super().on_fit_start(state)

    def on_step_end(self, state: TrainState) -> None:
        super().on_step_end(state)
        if state.step % self.log.scalars_every == 0:
            stats = self.task.take_train_stats()
            self.sink.scalars(state.step, tuple((f"train/{k}", v) for k, v in stats.items()))

    # Views of classes, images and tables, and a traced graph of a transformers model, do not apply.
    def _eval_views(self, state: TrainState, final: bool = False) -> None:
        return None

    def _input_samples(self) -> None:
        return None

    def _graph(self, model) -> None:
        return None

    def _projector(self, state: TrainState) -> None:
        return None
