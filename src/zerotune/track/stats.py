"""Statistics of weights, gradients and activations, computed on their own device.

Each function returns one small tensor that stays on the device: the training thread never
waits for it, and the background writer copies it to the host with a single transfer.
"""

from __future__ import annotations


import torch

from ..models.modes import eval_mode  # noqa: F401  (re-exported)

HIST_BINS = 30  # as tf.summary.histogram; fewer bytes to checksum and send


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
        previous: the parameters before the step, or None when no snapshot was taken. It is
            overwritten (with previous - weights) to avoid allocating a copy of the model.

    Returns:
        (R, L + 1): rows grad norm, weight norm and, when ``previous`` is given, the update
        ratio ‖w_before − w_after‖ / ‖w_after‖; the last column is the value over all layers.
    """
    w = norms(weights)
    g = norms([gr if gr is not None else p.new_zeros(()) for p, gr in zip(weights, grads)]).to(w.device)
    rows = [g, w]
    if previous is not None:
        torch._foreach_sub_(previous, weights)
        rows.append(norms(previous).to(w.device))
    m = torch.stack(rows)  # (R, L)
    total = m.square().sum(1).sqrt()  # (R,) root of summed squares = the norm over all layers
    if previous is not None:
        m[2] /= w.clamp_min(1e-12)
        total[2] /= total[1].clamp_min(1e-12)
    return torch.cat([m, total[:, None]], dim=1)


def hist_stats(t: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """[min, max, count, sum, sum of squares, bucket counts...] of a tensor's values.

    The buckets split [min, max] in ``bins`` equal parts. Bucket indices are computed on the
    device and counted with ``scatter_add_``: unlike ``histc`` (whose range must be a Python
    number, read back from the device) and ``bincount`` (which reads back its output size),
    nothing waits for the device, and on a CPU it is about twice as fast as ``histc``.
    """
    x = t.detach().reshape(-1).float()
    if x.numel() == 0:
        return torch.full((5 + bins,), float("nan"), device=x.device)
    lo, hi = torch.aminmax(x)
    idx = ((x - lo) * (bins / (hi - lo).clamp_min(1e-12))).long().clamp_(0, bins - 1)
    counts = x.new_zeros(bins).scatter_add_(0, idx, x.new_ones(1).expand(x.numel()))
    head = torch.stack([lo, hi, x.new_full((), float(x.numel())), x.sum(), torch.dot(x, x)])
    return torch.cat([head, counts])


def hist_stats_many(tensors: list[torch.Tensor], bins: int = HIST_BINS) -> torch.Tensor:
    """:func:`hist_stats` of each tensor, stacked to (len(tensors), 5 + bins) on one device."""
    if not tensors:
        return torch.zeros(0, 5 + bins)
    device = tensors[0].device
    return torch.stack([hist_stats(t, bins).to(device) for t in tensors])


def snapshot(tensors: list[torch.Tensor], into: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Copies of ``tensors`` to measure the next update against, reusing ``into`` when given."""
    if into is None:
        return [t.detach().clone() for t in tensors]
    torch._foreach_copy_(into, [t.detach() for t in tensors])
    return into


