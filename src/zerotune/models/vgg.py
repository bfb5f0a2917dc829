"""VGG with batch normalisation, after "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (Simonyan & Zisserman 2015), configurations A (VGG-11), B (13), D (16) and E (19),
batch norm after every convolution (Ioffe & Szegedy 2015).

Adapted to small images as the usual CIFAR-10 ports do: the five max pools take 32x32 down to
1x1, so the 4096-4096 classifier becomes one dense layer of ``dense`` units (or none). Pools use
``ceil_mode`` and global average pooling follows the last stage, so any input size of at least
1x1 works (28x28 MNIST, 8x8 digits) with the same weights shape.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from .registry import register_model

# Output channels of the convolutions of each stage; a max pool ends every stage (Table 1 of the paper).
STAGES: dict[int, list[list[int]]] = {
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


@dataclass(config=ConfigDict(extra="forbid"))
class VGGConfig:
    depth: Literal[11, 13, 16, 19] = 16
    width: float = Field(1.0, gt=0, le=4)  # multiplies every stage's channels (0.25: a 16x smaller net)
    dense: int = Field(512, ge=0, lt=2**31, strict=True)  # units of the hidden dense layer; 0 puts the head on the pooled features
    dropout: float = Field(0.5, ge=0, lt=1)  # before the dense layer and before the head
    batch_norm: bool = True


def _stage(cin: int, widths: list[int], batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for cout in widths:
        layers.append(nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm))  # BN has its own bias
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
        cin = cout
    layers.append(nn.MaxPool2d(2, ceil_mode=True))  # ceil: a 1x1 map stays 1x1 instead of vanishing
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, cfg: VGGConfig, input_shape: tuple[int, int, int], num_outputs: int):
        super().__init__()
        cin = input_shape[0]
        stages = []
        for widths in STAGES[cfg.depth]:
            widths = [max(1, round(w * cfg.width)) for w in widths]
            stages.append(_stage(cin, widths, cfg.batch_norm))
            cin = widths[-1]
        dense: list[nn.Module] = [nn.Dropout(cfg.dropout), nn.Linear(cin, cfg.dense), nn.ReLU(inplace=True)] if cfg.dense else []
        # (B, C, H, W) -> 5 stages -> (B, c, ceil(H/32), ceil(W/32)) -> pool -> (B, c) -> (B, dense or c)
        self.features = nn.Sequential(
            *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), *dense, nn.Dropout(cfg.dropout)
        )
        self.head = nn.Linear(cfg.dense or cin, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("vgg", VGGConfig, "VGG-11/13/16/19 with batch norm, for small images", input_kind="image")
def build_vgg(cfg: VGGConfig, input_shape, num_outputs):
    return VGG(cfg, input_shape, num_outputs)
