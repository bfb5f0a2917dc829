"""Linear models: least-squares linear regression and logistic / softmax regression."""

from __future__ import annotations

import math

from pydantic.dataclasses import dataclass
from pydantic import ConfigDict
from torch import nn

from .registry import register_model


@dataclass(config=ConfigDict(extra="forbid"))
class LinearConfig:
    bias: bool = True


class LinearModel(nn.Module):
    """One linear map of the flattened input; `features` is the identity on flattened inputs."""

    def __init__(self, in_features: int, num_outputs: int, bias: bool):
        super().__init__()
        self.features = nn.Flatten()  # (B, *input_shape) -> (B, F)
        self.head = nn.Linear(in_features, num_outputs, bias=bias)  # (B, F) -> (B, num_outputs)

    def forward(self, x):
        return self.head(self.features(x))


def _linear(cfg: LinearConfig, input_shape, num_outputs) -> nn.Module:
    return LinearModel(math.prod(input_shape), num_outputs, cfg.bias)


@register_model("linear_regression", LinearConfig, "linear regression y = Wx + b (use with MSE)")
def build_linear_regression(cfg, input_shape, num_outputs):
    return _linear(cfg, input_shape, num_outputs)


@register_model("logistic_regression", LinearConfig, "logistic / softmax regression: one linear layer of logits")
def build_logistic_regression(cfg, input_shape, num_outputs):
    return _linear(cfg, input_shape, num_outputs)
