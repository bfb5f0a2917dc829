"""Convolutional network in the style of the classic Keras MNIST example (LeCun et al. 1998):
conv 32-64-64 with max pooling between, then a dense head."""

from __future__ import annotations

import torch
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from ..errors import UserError
from .activations import Activation, make_activation
from .registry import Size, register_model


@dataclass(config=ConfigDict(extra="forbid"))
class CNNConfig:
    channels: list[Size] = Field(default_factory=lambda: [32, 64, 64])
    kernel_size: Size = 3
    dense: Size = 64
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    activation: Activation = "relu"


class CNN(nn.Module):
    def __init__(self, cfg: CNNConfig, input_shape: tuple[int, int, int], num_outputs: int):
        super().__init__()
        c, h, w = input_shape
        self.activation = cfg.activation  # read by models/init.py for the He gain
        layers: list[nn.Module] = []
        for i, out in enumerate(cfg.channels):
            layers.append(nn.Conv2d(c, out, cfg.kernel_size, padding="same"))
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(make_activation(cfg.activation))
            if i < len(cfg.channels) - 1:  # pool between convs, not after the last
                if min(h, w) < 2:
                    raise UserError(
                        f"model 'cnn': input {input_shape} is too small for {len(cfg.channels)} conv "
                        "layers with pooling; use fewer channels entries or larger images"
                    )
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        # (B, C, H, W) -> (B, channels[-1], h, w) -> (B, dense)
        self.features = nn.Sequential(
            *layers, nn.Flatten(), nn.Linear(c * h * w, cfg.dense), make_activation(cfg.activation), nn.Dropout(cfg.dropout)
        )
        self.head = nn.Linear(cfg.dense, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("cnn", CNNConfig, "CNN: conv 32-64-64 with pooling and a dense head", input_kind="image")
def build_cnn(cfg: CNNConfig, input_shape, num_outputs):
    return CNN(cfg, input_shape, num_outputs)
