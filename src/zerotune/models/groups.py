"""Parameter groups for the optimizer, kept beside the models: which parameters decay, and a model's own grouping.

A model may define ``param_groups(weight_decay)`` (the GPT names its two halves); fine-tuning builds
a pair per layer group with its own rate (`finetune/lr_groups.py`); the optimizer (`train/optim.py`)
takes whichever it is given.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from ..errors import UserError


def param_groups(params: Iterable[nn.Parameter], weight_decay: float, **extra) -> list[dict]:
    """Split parameters so that only matrices, kernels and embeddings are decayed, not biases or norms.

    The one grouping rule: GPT names the two halves, fine-tuning makes a pair per layer group with
    its own rate. Empty halves are left out.

    Args:
        params: the parameters to group.
        weight_decay: decay of the matrices and kernels.
        **extra: keys added to both groups, e.g. ``lr`` and ``name``.
    """
    params = list(params)
    decayed = {"params": [p for p in params if decays(p)], "weight_decay": weight_decay, **extra}
    plain = {"params": [p for p in params if not decays(p)], "weight_decay": 0.0, **extra}
    return [g for g in (decayed, plain) if g["params"]]


def decays(p: nn.Parameter) -> bool:
    """Whether weight decay applies: matrices, kernels and embeddings (2-D and up)."""
    return p.ndim >= 2


def model_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The model's own ``param_groups(weight_decay)`` if it has one, else `param_groups` of its trainable parameters."""
    if hasattr(model, "param_groups"):
        return model.param_groups(weight_decay)
    return param_groups(trainable_parameters(model), weight_decay)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that require a gradient (a tied weight once); a UserError if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UserError("the model has no trainable parameters: everything is frozen")
    return params
