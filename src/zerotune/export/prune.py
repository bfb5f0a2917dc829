"""Magnitude pruning (Han et al. 2015, "Learning both Weights and Connections"), with optional
fine-tuning while the pruning masks stay in force.

- global: the smallest-magnitude fraction of all Conv/Linear weights, ranked across layers.
- channel: in each Conv/Linear layer except the output layer, the output channels (rows) with the
  smallest L2 norm are zeroed (Li et al. 2017, "Pruning Filters for Efficient ConvNets"). The
  output layer is kept whole, since its rows are the classes. Channels are zeroed in place, not
  removed, so the file keeps its size; the zeros are visible in the sparsity and gzip columns.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune

from ..data.batches import epoch_permutation, iter_batches
from ..data.bundle import Split
from ..errors import UserError

PRUNE_METHODS = ("global", "channel")
_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def prunable_layers(model: nn.Module) -> list[nn.Module]:
    """Every Conv/Linear layer of ``model`` in definition order (the last one is the output layer)."""
    return [m for m in model.modules() if isinstance(m, _PRUNABLE)]


def check_amount(amount: float) -> None:
    if not 0.0 < amount < 1.0:
        raise UserError(f"prune amount must be between 0 and 1 (exclusive), got {amount}")


def prune_model(model: nn.Module, method: str, amount: float) -> nn.Module:
    """A copy of ``model`` with pruning masks attached (weights are masked on every forward).

    Args:
        model: an eval-mode float32 model.
        method: "global" or "channel".
        amount: fraction of weights (global) or of each layer's output channels (channel) to zero.

    Returns:
        The pruned copy; call ``make_permanent`` after any fine-tuning.
    """
    if method not in PRUNE_METHODS:
        raise UserError(f"prune method {method!r} is unknown; allowed: {', '.join(PRUNE_METHODS)}")
    check_amount(amount)
    model = copy.deepcopy(model)
    layers = prunable_layers(model)
    if method == "global":
        if not layers:
            raise UserError("the model has no Linear or Conv layers to prune")
        prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured, amount=amount)
    else:
        hidden = layers[:-1]
        if not hidden:
            raise UserError("channel pruning needs hidden layers; this model has only its output layer "
                            "(use --prune global)")
        for m in hidden:
            prune.ln_structured(m, "weight", amount=amount, n=2, dim=0)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the masks into the weights and drop the pruning hooks, leaving a plain module."""
    for m in prunable_layers(model):
        if prune.is_pruned(m) and hasattr(m, "weight_mask"):
            prune.remove(m, "weight")
    return model


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all Conv/Linear weight tensors."""
    weights = [m.weight.detach() for m in prunable_layers(model)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / total) if total else 0.0


def finetune(model: nn.Module, train: Split, loss_fn, *, epochs: int, lr: float, batch_size: int = 64,
             seed: int = 0) -> nn.Module:
    """Train a pruned model for a few epochs; the masks keep pruned weights at zero throughout.

    Args:
        model: a model returned by ``prune_model`` (masks still attached).
        train: the (normalised) training split.
        loss_fn: ``loss(outputs, targets)``, e.g. the run's ``Task.loss``.
        epochs: passes over the training split.
        lr: Adam learning rate; small, since the weights are already trained.
        batch_size: examples per step.
        seed: seed of the shuffling.
    """
    if epochs <= 0:
        return model
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    model.train()
    with torch.random.fork_rng():  # seeded dropout, without disturbing the caller's random state
        torch.manual_seed(seed)
        for epoch in range(epochs):
            perm = epoch_permutation(len(train), seed, epoch, train.x.device)
            for x, y in iter_batches(train, batch_size, perm):
                if len(y) < 2:  # batch norm cannot train on a single example
                    continue
                opt.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()
                opt.step()
    model.eval()
    for p in params:
        p.requires_grad_(False)
    return model
