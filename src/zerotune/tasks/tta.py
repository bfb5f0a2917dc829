"""Classification metrics with test-time augmentation: softmax averaged over fixed views (data/tta.py)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.batches import iter_batches
from ..data.bundle import Split
from ..models.modes import eval_mode
from .metrics import classification_metrics


def tta_probs(model: torch.nn.Module, x: torch.Tensor, views) -> torch.Tensor:
    """Class probabilities (B, C) of a batch: the mean over `views` of the model's softmax, in eval mode."""
    with eval_mode(model):
        return torch.stack([torch.softmax(model(view(x)).float(), dim=1) for _, view in views]).mean(0)


def tta_metrics(model: torch.nn.Module, split: Split, views, class_names: list[str]) -> dict:
    """Every classification metric of the averaged predictions, their loss (negative log of the
    averaged probability of the true class) and the names of the views."""
    probs = torch.cat([tta_probs(model, x, views) for x, _ in iter_batches(split, 512)])
    y = split.y.to(probs.device)
    loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), y)) if len(split) else float("nan")
    m = classification_metrics(y.cpu().numpy(), probs.cpu().numpy().astype(np.float64), class_names)
    return {"loss": loss, "n": len(split), **m, "views": [name for name, _ in views]}
