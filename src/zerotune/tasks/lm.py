"""The language-modelling task: next-token cross-entropy, perplexity, and how it is estimated."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..data.bundle import DataMeta
from ..errors import UserError
from ..models.modes import eval_mode

EVAL_BATCH = 64  # windows per forward pass when measuring


class LMTask:
    """Next-token prediction over windows of a token stream.

    During training, validation loss is estimated on a fixed set of windows (the same ones at
    every evaluation, so successive estimates differ by the model only, not by sampling noise).
    The final metrics score every token of a split exactly once.
    """

    kind = "lm"
    monitor_default = ("val/loss", "min")

    def __init__(self, meta: DataMeta, loss: str = "auto", label_smoothing: float = 0.0, *,
                 eval_windows: int):
        if loss not in ("auto", "cross_entropy"):
            raise UserError(f"train.loss {loss!r} does not fit language modelling; allowed: auto, cross_entropy")
        self.meta = meta
        self.loss_name = "cross_entropy"
        self.label_smoothing = label_smoothing
        self.eval_windows = eval_windows

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean next-token loss. out: (B, T, V) logits; y: (B, T) token ids."""
        return F.cross_entropy(out.flatten(0, 1).float(), y.flatten(), label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def _sum_loss(self, model, batches) -> tuple[float, int]:
        total, count = 0.0, 0
        with eval_mode(model):
            for x, y in batches:
                out = model(x)
                total += float(F.cross_entropy(out.flatten(0, 1).float(), y.flatten(), reduction="sum"))
                count += y.numel()
        return total, count

    def metric_names(self, prefix: str) -> list[str]:
        """The names `quick_metrics` gives."""
        return [f"{prefix}/loss", f"{prefix}/perplexity"]

    def quick_metrics(self, model: torch.nn.Module, split, prefix: str) -> dict[str, float]:
        """Loss and perplexity on the split's fixed evaluation windows."""
        if split.n_tokens <= split.block_size:  # too short for one whole window (e.g. no test part)
            return {}
        x, y = split.fixed_windows(self.eval_windows)  # the same windows each time; gathering them costs microseconds
        total, count = self._sum_loss(model, ((x[i:i + EVAL_BATCH], y[i:i + EVAL_BATCH])
                                              for i in range(0, len(x), EVAL_BATCH)))
        loss = total / max(count, 1)
        return {f"{prefix}/loss": loss, f"{prefix}/perplexity": _exp(loss)}

    def full_metrics(self, model: torch.nn.Module, split) -> dict:
        """Loss, perplexity and bits per token over every token of the split (what `eval` prints)."""
        if split.n_tokens < 2:
            return {"loss": float("nan"), "n": 0, "tokens": 0}
        total, count = self._sum_loss(model, split.iter_sequential(EVAL_BATCH))
        loss = total / count
        return {"loss": loss, "perplexity": _exp(loss), "bits_per_token": loss / math.log(2),
                "tokens": count, "n": count}


def _exp(x: float) -> float:
    return math.exp(x) if x < 700 else float("inf")
