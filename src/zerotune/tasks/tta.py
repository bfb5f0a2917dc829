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


def tta_metrics_of(model: torch.nn.Module, split: Split, meta, augment) -> dict:
    """`tta_metrics` over the fixed views the run's augmentation (`augment`, its AugmentConfig) implies.

    Raises:
        UserError: the run does not classify images, or trained with no augmentation that has views.
    """
    from ..data.tta import tta_views
    from ..errors import UserError

    if meta.task != "classification" or not meta.is_image:
        raise UserError("eval --tta averages predictions over views of images: it applies to image "
                        f"classification, not this run's {'image ' if meta.is_image else ''}{meta.task}")
    views = tta_views(augment)
    if len(views) == 1:
        raise UserError("eval --tta: the run trained without flip, shift, crop_padding, rotate_degrees or scale, "
                        "so there is no view its model learned to be invariant to (see docs/training.md)")
    return tta_metrics(model, split, views, meta.class_names)
