"""Multi-layer perceptron with optional batch normalisation (Ioffe & Szegedy 2015) and dropout."""

from __future__ import annotations

import math

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from .activations import Activation, make_activation
from .registry import Size, register_model


@dataclass(config=ConfigDict(extra="forbid"))
class MLPConfig:
    hidden: list[Size] = Field(default_factory=lambda: [256, 128])
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig, in_features: int, num_outputs: int):
        super().__init__()
        self.activation = cfg.activation  # read by models/init.py for the He gain
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in cfg.hidden:
            layers.append(nn.Linear(width, h, bias=not cfg.batch_norm))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(cfg.activation))
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
            width = h
        self.features = nn.Sequential(*layers)  # (B, ...) -> (B, hidden[-1])
        self.head = nn.Linear(width, num_outputs)  # (B, hidden[-1]) -> (B, num_outputs)

    def forward(self, x):
        return self.head(self.features(x))


@register_model("mlp", MLPConfig, "multi-layer perceptron (dropout and batch-norm options)")
def build_mlp(cfg: MLPConfig, input_shape, num_outputs):
    return MLP(cfg, math.prod(input_shape), num_outputs)
