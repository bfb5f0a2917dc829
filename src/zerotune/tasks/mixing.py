"""The loss of a mixed batch (mixup, cutmix): the two labels' losses weighted by the mixing share."""

from __future__ import annotations

from collections.abc import Callable

import torch


def mixed_loss(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], out: torch.Tensor,
               y_a: torch.Tensor, y_b: torch.Tensor, lam: float) -> torch.Tensor:
    """``lam * loss(out, y_a) + (1 - lam) * loss(out, y_b)`` (Zhang et al. 2018, eq. 1 by linearity).

    Args:
        loss: the task's criterion, e.g. `Task.loss`.
        out: the model's outputs on the mixed inputs.
        y_a, y_b: each example's own label and its partner's.
        lam: the share of `y_a` (1.0: an unmixed batch, one criterion call).
    """
    if lam == 1.0:
        return loss(out, y_a)
    return lam * loss(out, y_a) + (1.0 - lam) * loss(out, y_b)
