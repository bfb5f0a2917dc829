"""Weight initialisation schemes: normal, Xavier (Glorot & Bengio 2010) and He (He et al. 2015)."""

from __future__ import annotations

import math

from torch import nn

from ..errors import UserError

SCHEMES = ("default", "normal", "xavier", "he")


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear and Conv weight in place; biases start at zero.

    "default" keeps PyTorch's own initialisation. "he" uses the gain of the model's activation
    (its ``activation`` attribute, e.g. "silu"; ReLU's when it has none).
    """
    from .activations import he_gain
    if scheme not in SCHEMES:
        raise UserError(f"unknown init {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if scheme == "default":
        return
    gain = he_gain(getattr(model, "activation", "relu"))
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme == "normal":
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            elif scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                fan_in = m.weight[0].numel()  # inputs per output unit: in_features, or in_channels x kernel
                nn.init.normal_(m.weight, mean=0.0, std=gain / math.sqrt(fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
