"""Weight initialisation schemes: normal, Xavier (Glorot & Bengio 2010) and He (He et al. 2015)."""

from __future__ import annotations

from torch import nn

from ..errors import UserError

SCHEMES = ("default", "normal", "xavier", "he")


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear and Conv weight in place; biases start at zero.

    "default" keeps PyTorch's own initialisation.
    """
    if scheme not in SCHEMES:
        raise UserError(f"unknown init {scheme!r}; allowed: {', '.join(SCHEMES)}")
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme == "normal":
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            elif scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
