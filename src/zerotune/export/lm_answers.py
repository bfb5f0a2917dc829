"""Greedy answers of a transformers causal LM, for checking an exported file against the run's model.

transformers' own ``generate`` (greedy, one prompt at a time, stopping at the run's end-of-answer ids)
runs both sides, so a file read back by transformers alone is judged the same way as the reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass
class Answers:
    """Answer token ids per prompt (up to and including the stop id) and the decoding speed."""

    ids: list[list[int]]
    tokens_per_s: float


@dataclass
class Agreement:
    """How many greedy answers of an exported model equal the reference's."""

    same: int
    total: int
    held_out: int  # prompts among them that are the run's held-out records
    tokens: int  # the longest answer compared

    @property
    def fraction(self) -> float:
        return self.same / self.total if self.total else 1.0

    def summary(self) -> str:
        return (f"{self.same}/{self.total} greedy answers of up to {self.tokens} tokens the same "
                f"({self.held_out} held-out records)")


@torch.inference_mode()
def greedy_answers(model, prompts: list[list[int]], stop_ids: list[int], max_new_tokens: int) -> Answers:
    """Each prompt's greedy answer, cut after its first stop id, and the tokens written per second."""
    answers, written, seconds = [], 0, 0.0
    for ids in prompts:
        x = torch.tensor([ids])
        t0 = time.perf_counter()
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=stop_ids, pad_token_id=stop_ids[0] if stop_ids else 0)
        seconds += time.perf_counter() - t0
        answer = out[0, len(ids):].tolist()
        ends = [i for i, t in enumerate(answer) if t in stop_ids]
        answers.append(answer[:ends[0] + 1] if ends else answer)
        written += len(answer)
    return Answers(answers, written / seconds if seconds else 0.0)


def agreement(ours: Answers, theirs: Answers, held_out: int) -> Agreement:
    same = sum(a == b for a, b in zip(ours.ids, theirs.ids, strict=True))
    return Agreement(same, len(ours.ids), held_out, max(len(a) for a in ours.ids))
