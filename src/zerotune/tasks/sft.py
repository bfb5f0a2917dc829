"""Instruction tuning: next-token loss on the answer tokens, perplexity, and exact match of greedy answers."""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F

from ..data.bundle import DataMeta
from ..data.sft import IGNORE, SFTSplit
from ..errors import UserError
from ..lm.answer import greedy_ids
from ..data.chat import ChatFormat
from ..models.modes import eval_mode

EVAL_BATCH = 16  # examples per forward pass when measuring


class SFTTask:
    """Loss on the labelled (answer) tokens only; answers to held-out prompts scored by exact match.

    Args:
        meta: the data's metadata.
        fmt: the chat format (decodes answers, knows the end token).
        sft: the SFTConfig (``answer_regex``, ``eval_prompts``, ``max_new_tokens``).
        loss: ``train.loss`` (auto or cross_entropy).
    """

    kind = "sft"
    monitor_default = ("val/loss", "min")

    def __init__(self, meta: DataMeta, fmt: ChatFormat, sft, loss: str = "auto"):
        if loss not in ("auto", "cross_entropy"):
            raise UserError(f"train.loss {loss!r} does not fit instruction tuning; allowed: auto, cross_entropy")
        self.meta, self.fmt, self.sft = meta, fmt, sft
        self.loss_name = "cross_entropy"
        self.regex = re.compile(sft.answer_regex) if sft.answer_regex else None

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss over labelled tokens. out: (B, T, V) logits and y: (B, T) next-token ids or -100;
        or, of packed rows, out (N, V) and y (N,) at the kept positions only."""
        return F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), y.reshape(-1), ignore_index=IGNORE)

    @staticmethod
    def loss_units(y: torch.Tensor) -> int:
        """What `loss` averages over: the labelled tokens of `y`. Micro-batches (and ranks) hold
        different numbers of them, so the trainer weights each one's mean by its count: a step's
        gradient is then that of the mean over all of its tokens, as in one batch."""
        return int((y != IGNORE).sum())

    @torch.no_grad()
    def _sum_loss(self, model, split: SFTSplit) -> tuple[float, int]:
        total, count = 0.0, 0
        with eval_mode(model):
            batches = split.in_order(EVAL_BATCH)
            for i in range(len(batches)):
                x, y = batches[i]
                total += float(F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten(), ignore_index=IGNORE,
                                               reduction="sum"))
                count += int((y != IGNORE).sum())
        return total, count

    def metric_names(self, prefix: str) -> list[str]:
        """The names `quick_metrics` gives."""
        return [f"{prefix}/loss", f"{prefix}/perplexity"] + ([f"{prefix}/exact_match"] if self.sft.eval_prompts else [])

    def quick_metrics(self, model: torch.nn.Module, split: SFTSplit, prefix: str) -> dict[str, float]:
        """Loss and perplexity on the answer tokens; exact match on the first ``sft.eval_prompts`` prompts."""
        if not len(split):
            return {}
        total, count = self._sum_loss(model, split)
        loss = total / max(count, 1)
        out = {f"{prefix}/loss": loss, f"{prefix}/perplexity": _exp(loss)}
        if self.sft.eval_prompts:
            out[f"{prefix}/exact_match"] = self.exact_match(model, split, min(len(split), self.sft.eval_prompts))
        return out

    def full_metrics(self, model: torch.nn.Module, split: SFTSplit, answers: list | None = None) -> dict:
        """Loss, perplexity and exact match over every example of the split (what `eval` prints); each
        example's `answer_rows` row is appended to `answers` when it is given."""
        if not len(split):
            return {"loss": float("nan"), "n": 0, "tokens": 0}
        total, count = self._sum_loss(model, split)
        loss = total / max(count, 1)
        rows = self.answer_rows(model, split, len(split))
        if answers is not None:
            answers.extend(rows)
        return {"loss": loss, "perplexity": _exp(loss), "exact_match": sum(r["match"] for r in rows) / len(rows),
                "tokens": count, "n": len(split)}

    def answers(self, model: torch.nn.Module, split: SFTSplit, n: int) -> list[str]:
        """The model's greedy answers to the first `n` prompts of `split`."""
        with eval_mode(model):
            return [self.fmt.decode(greedy_ids(model, split.prompt(i), self.sft.max_new_tokens, self.fmt.stop_id))
                    for i in range(n)]

    def reference(self, split: SFTSplit, i: int) -> str:
        """The expected answer of example `i`, as the data gives it."""
        return self.fmt.decode(split.answer(i))

    def exact_match(self, model: torch.nn.Module, split: SFTSplit, n: int) -> float:
        """Fraction of the first `n` prompts whose answer equals the reference (after ``sft.answer_regex``)."""
        return sum(r["match"] for r in self.answer_rows(model, split, n)) / max(n, 1)

    def answer_rows(self, model: torch.nn.Module, split: SFTSplit, n: int) -> list[dict]:
        """The first `n` examples as ``{line, prompt, reference, answer, match}``: the record's line in its file
        and its last user message (the whole prompt as text when the split has no records), the reference
        answer, the model's greedy answer, and whether they match."""
        rows = []
        for i, answer in enumerate(self.answers(model, split, n)):
            if split.records is not None:
                line, messages = split.records[i]
                where = {"line": line, "prompt": next(m["content"] for m in reversed(messages) if m["role"] == "user")}
            else:
                where = {"prompt": self.fmt.text(split.prompt(i))}
            reference = self.reference(split, i)
            rows.append({**where, "reference": reference, "answer": answer, "match": self.matches(answer, reference)})
        return rows

    def matches(self, answer: str, reference: str) -> bool:
        """Exact match of stripped texts, or of what ``sft.answer_regex`` extracts from each."""
        if self.regex is None:
            return answer.strip() == reference.strip()
        a, r = _extract(self.regex, answer), _extract(self.regex, reference)
        return a is not None and a == r


def _extract(regex: re.Pattern, text: str) -> str | None:
    m = regex.search(text)
    if m is None:
        return None
    return (m.group(1) if m.groups() else m.group(0)).strip()


def _exp(x: float) -> float:
    return math.exp(x) if x < 700 else float("inf")
