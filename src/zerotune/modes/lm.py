"""Language modelling: a GPT learns to continue a corpus, one token after another."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UserError
from ..tasks.supervised import make_task
from .base import Mode, PreparedRun, TextGenerator, refuse_grad_checkpointing


class LanguageModel(Mode):
    """The base mode of a run on a corpus (``data.name = "corpus"``)."""

    base = True
    answers_prompts = True

    @classmethod
    def applies(cls, config) -> bool:
        return config.data.name == "corpus"

    def task(self, config, data):
        return make_task(data.meta, config.train, config.data, None)  # no classes to weigh

    def setup_model(self, run: PreparedRun) -> None:
        refuse_grad_checkpointing(run.config)

    def views(self, run: PreparedRun, run_dir: Path, shown: list) -> list:
        from ..track.lm_board import LMBoard

        return [LMBoard(run_dir, run.config, run.data, run.task)]

    def text_generator(self, run, run_dir) -> TextGenerator:
        from ..data.lm_tokenizer import load_tokenizer_dir
        from ..lm.sampling import generate_text
        from ..run.files import RunDir

        tokenizer = load_tokenizer_dir(RunDir(run_dir).tokenizer)

        def continuation(prompt: str, system: str | None, sampling: dict):
            if system is not None:
                raise UserError("--system applies to instruction-tuned runs (data.name = 'sft')")
            tokenizer.encode(prompt, what="prompt")  # characters outside a char vocabulary: one clear error, up front
            return generate_text(run.model, tokenizer, prompt, **{**sampling, "stop": list(sampling["stop"])})

        return continuation

    def summary_input(self, meta) -> torch.Tensor:
        return torch.zeros((1, *meta.input_shape), dtype=torch.long)
