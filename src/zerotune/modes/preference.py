"""Preference tuning: a causal language model learns to prefer the chosen answer of each pair to the
rejected one (DPO or IPO; ``data.name = "preference"``; `tasks/preference.py`).

It is a fine-tune (``zerotune finetune RECIPE --from SOURCE``, the fine-tune mode added to this one):
the source is the reference. Under LoRA the reference is the model itself with its adapters off, so
no second copy exists; under any other strategy the weights it would come from change, so its
log-probs of every pair are computed once before training and kept in the run directory
(``reference_logps.safetensors``), which a resume reads back and checks.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..run.files import RunDir
from .base import Mode, PreparedRun, TextGenerator


class Preference(Mode):
    """The base mode of a run on preference pairs: DPO/IPO loss, implicit rewards as metrics."""

    base = True
    answers_prompts = True

    def __init__(self):
        self.cached = None  # the reference log-probs computed for a new run: {split: (N, 2)}

    @classmethod
    def applies(cls, config) -> bool:
        return config.data.name == "preference"

    def configure(self, config):
        from ..finetune.setup import is_finetune

        if not is_finetune(config):
            raise UserError("data 'preference' tunes a causal language model against itself as it was: "
                            "run `zerotune finetune RECIPE --from SOURCE` (a zerotune GPT run or a transformers "
                            "causal language model directory)")
        return config, None

    def task(self, config, data):
        from ..config import PreferenceConfig
        from ..tasks.preference import PreferenceTask

        return PreferenceTask(data.meta, config.preference or PreferenceConfig(), config.train.loss, data.chat)

    def setup_model(self, run: PreparedRun) -> None:
        from ..finetune.sft import prepare_causal_lm

        prepare_causal_lm(run.model, run.config)

    def ready(self, run: PreparedRun) -> None:
        """The source weights, the adapters and a resumed checkpoint's weights are in place: the reference now."""
        from ..models.lora import is_lora

        if is_lora(run.config):
            run.data = _live_reference(run)
        elif run.fresh:
            self.cached = _reference_of_source(run)
            run.data = _with_cached(run.data, self.cached)
        # resumed without adapters: `resume` reads the file a new run wrote

    def write_files(self, run: PreparedRun, run_dir: Path) -> None:
        if self.cached is not None:
            from ..data.preference_cache import save_reference

            save_reference(RunDir(run_dir).reference_logps, run.data, self.cached)

    def resume(self, run: PreparedRun, run_dir: Path) -> None:
        from ..models.lora import is_lora

        if not is_lora(run.config):
            from ..data.preference_cache import load_reference

            run.data = _with_cached(run.data, load_reference(RunDir(run_dir).reference_logps, run.data))

    def views(self, run: PreparedRun, run_dir: Path, shown: list) -> list:
        from ..track.preference_board import PreferenceBoard

        return [PreferenceBoard(run_dir, run.config, run.data, run.task)]

    def text_generator(self, run, run_dir) -> TextGenerator:
        from ..runload.load import chat_format_for
        from .sft import ChatAnswer

        return ChatAnswer(run.model, chat_format_for(run.config, run_dir)[0])


def _live_reference(run: PreparedRun):
    """The data whose training batches carry the log-probs of the model with its adapters off, computed in
    the run's precision; evaluation switches the adapters of the model it measures off itself."""
    from ..data.bundle import DataBundle
    from ..tasks.preference import AdapterReference

    data = run.data
    live = AdapterReference(run.model, run.device, run.config.train.precision)
    return DataBundle(data.train.with_reference(reference=live), data.val, data.test, data.meta, data.tokenizer,
                      data.chat)


def _reference_of_source(run: PreparedRun) -> dict:
    """Every split's (N, 2) log-probs under the model as loaded from its source: the training split in the
    run's precision (as training computes the policy's), val and test in float32 (as evaluation does)."""
    from ..data.preference_cache import SPLITS
    from ..tasks.preference import reference_logps

    precision = {"train": run.config.train.precision}
    return {name: reference_logps(run.model, run.data.split(name), run.device, precision.get(name, "32"))
            for name in SPLITS}


def _with_cached(data, refs: dict):
    from ..data.preference_cache import with_cached

    return with_cached(data, refs)
