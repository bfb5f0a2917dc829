"""Instruction tuning: a causal language model learns to answer prompts (``data.name = "sft"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .base import Mode, PreparedRun, TextGenerator


class InstructionTuning(Mode):
    """The base mode of a run on instruction data: loss on the answers, greedy answers as metrics."""

    base = True
    answers_prompts = True
    answers_split = True

    @classmethod
    def applies(cls, config) -> bool:
        return config.data.name == "sft"

    def task(self, config, data):
        from ..config import SFTConfig
        from ..tasks.sft import SFTTask

        return SFTTask(data.meta, data.chat, config.sft or SFTConfig(), config.train.loss)

    def setup_model(self, run: PreparedRun) -> None:
        from ..finetune.sft import prepare_causal_lm

        prepare_causal_lm(run.model, run.config)
        if packs(run):
            from ..data.packing import packed_split

            run.data.train = packed_split(run.data.train)

    def views(self, run: PreparedRun, run_dir: Path, shown: list) -> list:
        from ..track.sft_board import SFTBoard

        return [SFTBoard(run_dir, run.config, run.data, run.task)]

    def text_generator(self, run, run_dir) -> TextGenerator:
        from ..runload.load import chat_format_for

        return ChatAnswer(run.model, chat_format_for(run.config, run_dir)[0])


def packs(run: PreparedRun) -> bool:
    """Whether the run trains on packed rows: asked for, a model that reads them, one process
    (a packed batch is not split across ranks)."""
    from ..config import SFTConfig
    from ..distributed.env import current

    ctx = current()
    return ((run.config.sft or SFTConfig()).packing and getattr(run.model, "reads_packed_rows", False)
            and (ctx is None or ctx.world_size == 1))


class ChatAnswer:
    """A prompt formatted as a user turn with the run's chat template; the answer alone streams back."""

    def __init__(self, model, chat):
        self.model, self.chat = model, chat

    def __call__(self, prompt: str, system: str | None, sampling: dict) -> Iterator[str]:
        from ..data.chat import user_turn
        from ..lm.detokenize import TextStream
        from ..lm.sampling import sample_tokens, stream_text

        chat, s = self.chat, sampling
        ids = chat.prompt_ids(user_turn(prompt, system))
        tokens = sample_tokens(self.model, ids, s["max_new_tokens"], temperature=s["temperature"], top_k=s["top_k"],
                               top_p=s["top_p"], seed=s["seed"], use_cache=s["use_cache"], stop_id=chat.stop_id)
        # the answer alone, decoded as `ChatFormat.decode` does: up to its end token or end text
        stops = [*s["stop"], *([chat.end_text] if chat.end_text else [])]
        return stream_text(tokens, TextStream(chat.text, (), stops))

