"""TensorBoard for preference tuning: the DPO/IPO loss, the implicit rewards and the answers' log-probs.

Built on :class:`~zerotune.track.tensorboard.TensorBoardLogger` (loss, learning rate, gradient
norms, per-layer statistics, hparams). Every ``log.scalars_every`` steps the mean over the training
batches since the last point: ``train/rewards/chosen``, ``train/rewards/rejected``,
``train/rewards/margin``, ``train/rewards/accuracy`` (the share of pairs whose chosen answer has the
higher reward), ``train/logps/chosen`` and ``train/logps/rejected``; at each evaluation the same over
the whole validation split as ``val/...`` (the task's metrics, which `on_eval_end` writes). At each
evaluation a text table (``preference/answers``) sets the base model's greedy answer to each of
``preference.board_prompts`` held-out prompts next to the current model's and the chosen answer.
"""

from __future__ import annotations

from ..train.callbacks import TrainState
from . import text
from .sft_board import shown
from .tensorboard import TensorBoardLogger


class PreferenceBoard(TensorBoardLogger):
    """The TensorBoard callback of a preference-tuning run (arguments as TensorBoardLogger's)."""

    def __init__(self, run_dir, config, data, task):
        super().__init__(run_dir, config, data, task, background_views=False)
        self.n_prompts = min(task.cfg.board_prompts, len(data.val)) if task.check is not None else 0
        self.base: list[str] = []  # the base model's answers, kept in checkpoints for a resumed run

    def on_fit_start(self, state: TrainState) -> None:
        self.task.take_train_stats()  # what measuring before training (the fine-tune's baseline) left
        if state.resumed_from_step is None and self.n_prompts:
            self.base = self.task.check.answers(state.model, self.data.val, self.n_prompts)
        super().on_fit_start(state)

    def on_step_end(self, state: TrainState) -> None:
        super().on_step_end(state)
        if state.step % self.log.scalars_every == 0:
            stats = self.task.take_train_stats()
            self.sink.scalars(state.step, tuple((f"train/{k}", v) for k, v in stats.items()))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "base": self.base}  # the base model's answers, asked once before training

    def load_state_dict(self, state: dict) -> None:
        self.base = list(state.get("base", []))

    def _eval_views(self, state: TrainState, final: bool = False) -> None:
        if not self.n_prompts:
            return
        val, check = self.data.val, self.task.check
        rows = []
        for i, answer in enumerate(check.answers(state.model, val, self.n_prompts)):
            base = self.base[i] if i < len(self.base) else ""
            row = [check.fmt.text(val.prompt(i))[-80:], check.chosen(val, i), base, answer]
            follows = check.preferred(answer)
            rows.append([shown(c) for c in row] + ([] if follows is None else ["yes" if follows else "no"]))
        header = ["prompt (end)", "chosen", "base model", "now"] + (["preferred"] if check.regex is not None else [])
        self.sink.add_text("preference/answers", text.table(header, rows), state.step)

    # Views of classes, images and tables, and a traced graph of a transformers model, do not apply.

    def _input_samples(self) -> None:
        return None

    def _graph(self, model) -> None:
        return None

    def _projector(self, state: TrainState) -> None:
        return None
