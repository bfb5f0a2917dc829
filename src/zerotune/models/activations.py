"""The activations the MLP and CNN offer, and the He-initialisation gain that suits each.

He et al. (2015) keep the variance of activations constant across layers by drawing weights with
std = gain / sqrt(fan_in), where gain = 1 / sqrt(E[f(z)^2]) for z ~ N(0, 1): sqrt(2) for ReLU and
sqrt(2 / (1 + a^2)) for a leaky ReLU of slope a (Maas et al. 2013). SiLU (Hendrycks & Gimpel 2016;
Ramachandran et al. 2017) is not homogeneous, so its gain is taken at unit input variance.
"""

from __future__ import annotations

import math
from typing import Literal

from torch import nn

LEAKY_SLOPE = 0.01  # PyTorch's default negative slope

Activation = Literal["relu", "leaky_relu", "silu", "gelu", "tanh", "sigmoid"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}

# 1 / sqrt(E[silu(z)^2]) for z ~ N(0, 1), by numerical integration (1e7 samples: 1.6768)
SILU_GAIN = 1.6768


def make_activation(name: str) -> nn.Module:
    """A new activation module by name (a leaky ReLU has slope LEAKY_SLOPE)."""
    return nn.LeakyReLU(LEAKY_SLOPE) if name == "leaky_relu" else ACTIVATIONS[name]()


def he_gain(name: str) -> float:
    """The He-initialisation gain for `name`; ReLU's sqrt(2) for those He's rule was not made for."""
    if name == "leaky_relu":
        return math.sqrt(2.0 / (1 + LEAKY_SLOPE**2))
    if name == "silu":
        return SILU_GAIN
    return math.sqrt(2.0)
