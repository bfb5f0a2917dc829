"""Statistics of weights, gradients and activations, computed on their own device.

Each function returns one small tensor that stays on the device: the training thread never
waits for it, and the background writer copies it to the host with a single transfer.
"""

from __future__ import annotations

import torch

HIST_BINS = 64


def norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """L2 norm of each tensor, as a 1-d float32 tensor (one fused call where torch has it)."""
    if not tensors:
        return torch.zeros(0)
    try:
        out = torch._foreach_norm(tensors)
    except (AttributeError, RuntimeError):  # older torch, or mixed devices
        out = [torch.linalg.vector_norm(t) for t in tensors]
    return torch.stack([o.float() for o in out])


def layer_stats(weights: list[torch.Tensor], grads: list[torch.Tensor | None],
                previous: list[torch.Tensor] | None) -> torch.Tensor:
    """Per-layer gradient norm, weight norm and update-to-weight ratio, packed in one tensor.

    Args:
        weights: the parameters after the step.
        grads: their gradients (None for a parameter that got none; reported as 0).
        previous: the parameters before the step, or None when no snapshot was taken.

    Returns:
        (3, L + 1): rows grad norm, weight norm, update ratio; the last column is the global
        value over all layers. The ratio row is NaN when ``previous`` is None.
    """
    w = norms(weights)
    g = norms([gr if gr is not None else torch.zeros((), device=p.device) for p, gr in zip(weights, grads)])
    g = g.to(w.device)
    if previous is not None:
        delta = norms(torch._foreach_sub(weights, previous))
        prev = norms(previous)
        ratio = delta / prev.clamp_min(1e-12)
        total_ratio = delta.square().sum().sqrt() / prev.square().sum().sqrt().clamp_min(1e-12)
    else:
        ratio = torch.full_like(w, float("nan"))
        total_ratio = torch.tensor(float("nan"), device=w.device)
    total = torch.stack([g.square().sum().sqrt(), w.square().sum().sqrt(), total_ratio])
    return torch.cat([torch.stack([g, w, ratio]), total[:, None]], dim=1)


def hist_stats(t: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """[min, max, count, sum, sum of squares, bucket counts...] of a tensor's values.

    The buckets split [min, max] in ``bins`` equal parts. Values are rescaled to [0, 1] on the
    device first, so ``histc`` gets a fixed range and nothing has to be read back to pick one.
    """
    x = t.detach().reshape(-1).float()
    if x.numel() == 0:
        return torch.full((5 + bins,), float("nan"), device=x.device)
    lo, hi = x.min(), x.max()
    counts = torch.histc((x - lo) / (hi - lo).clamp_min(1e-12), bins=bins, min=0.0, max=1.0)
    n = x.new_full((), float(x.numel()))
    return torch.cat([torch.stack([lo, hi, n, x.sum(), x.square().sum()]), counts])


def hist_stats_many(tensors: list[torch.Tensor], bins: int = HIST_BINS) -> torch.Tensor:
    """:func:`hist_stats` of each tensor, stacked to (len(tensors), 5 + bins) on one device."""
    if not tensors:
        return torch.zeros(0, 5 + bins)
    device = tensors[0].device
    return torch.stack([hist_stats(t, bins).to(device) for t in tensors])


def snapshot(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Detached copies, to measure the next update against."""
    return [t.detach().clone() for t in tensors]
