"""TensorBoard for instruction tuning: answer-token loss, tokens/s, and base vs current answers.

Built on :class:`~zerotune.track.tensorboard.TensorBoardLogger` (loss, learning rate, gradient
norms, per-layer statistics, hparams). ``train/loss`` and ``val/loss`` are the loss on answer
tokens (all tokens with ``sft.mask_prompt = false``); the fine-tune's own view adds the
trainable share (``finetune/trainable_percent``). At each evaluation a text table
(``sft/answers``) sets the base model's answer to each of ``sft.board_prompts`` held-out
prompts next to the current model's.
"""

from __future__ import annotations

from ..train.callbacks import TrainState
from . import text
from .tensorboard import TensorBoardLogger


class SFTBoard(TensorBoardLogger):
    """The TensorBoard callback of an instruction-tuning run (arguments as TensorBoardLogger's)."""

    def __init__(self, run_dir, config, data, task):
        super().__init__(run_dir, config, data, task, background_views=False)
        self.n_prompts = min(task.sft.board_prompts, len(data.val))
        self.base: list[str] = []  # the base model's answers, kept in checkpoints for a resumed run
        lengths = data.train.lengths
        self.tokens_per_example = float(lengths.float().mean()) if len(lengths) else 0.0

    def on_fit_start(self, state: TrainState) -> None:
        if state.resumed_from_step is None and self.n_prompts:
            self.base = self.task.answers(state.model, self.data.val, self.n_prompts)
        super().on_fit_start(state)

    def on_step_end(self, state: TrainState) -> None:
        super().on_step_end(state)
        if state.step % self.log.scalars_every == 0:
            self.sink.scalars(state.step, (("perf/tokens_per_sec", state.samples_per_sec * self.tokens_per_example),))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "base": self.base}  # the base model's answers, asked once before training

    def load_state_dict(self, state: dict) -> None:
        self.base = list(state.get("base", []))

    def _eval_views(self, state: TrainState, final: bool = False) -> None:
        if not self.n_prompts:
            return
        val, task = self.data.val, self.task
        now = task.answers(state.model, val, self.n_prompts)
        rows = []
        for i, answer in enumerate(now):
            reference = task.reference(val, i)
            base = self.base[i] if i < len(self.base) else ""
            rows.append([shown(task.fmt.text(val.prompt(i))[-80:]), shown(reference), shown(base), shown(answer),
                         "yes" if task.matches(answer, reference) else "no"])
        self.sink.add_text("sft/answers", text.table(["prompt (end)", "reference", "base model", "now", "match"], rows),
                           state.step)

    # Views of image and table data, and a traced graph of a transformers model, do not apply.
    def _input_samples(self) -> None:
        return None

    def _graph(self, model) -> None:
        return None

    def _projector(self, state: TrainState) -> None:
        return None


def shown(text: str) -> str:
    """Text for a table cell: control characters (an untrained model writes any token) as U+FFFD."""
    return "".join(c if c.isprintable() or c == "\n" else "\ufffd" for c in text)
