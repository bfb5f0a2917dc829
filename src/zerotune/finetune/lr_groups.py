"""Discriminative (layer-wise) learning rates (Howard & Ruder 2018): the head trains at the base
rate and each block below it at `decay` times the rate of the block above."""

from __future__ import annotations

from torch import nn

from ..models.groups import param_groups
from .freezing import LayerGroup


def group_rates(groups: list[LayerGroup], lr: float, decay: float) -> dict[str, float]:
    """{group name: learning rate}; `groups` run from input to output with the head last."""
    n = len(groups)
    return {g.name: lr * decay ** (n - 1 - i) for i, g in enumerate(groups)}


def optimizer_groups(model: nn.Module, groups: list[LayerGroup], trainable: frozenset[str], lr: float,
                     decay: float, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups, head first, for every parameter that trains at some epoch.

    Each layer group is split by `models.groups.param_groups` into matrices/kernels (decayed) and
    biases/norms (not decayed), as in the plain optimizer. Parameters that are frozen now but
    unfreeze later are included: they get no gradient while frozen, and optimizers skip
    parameters without one.

    Returns:
        Dicts with ``params``, ``lr``, ``weight_decay`` and ``name`` (the layer group).
    """
    params = dict(model.named_parameters())
    rates = group_rates(groups, lr, decay)
    out = []
    for g in reversed(groups):  # head first: the loop reports the first group's rate as train/lr
        ps = [params[n] for n in g.params if n in trainable]
        out += param_groups(ps, weight_decay, lr=rates[g.name], name=g.name)
    return out
