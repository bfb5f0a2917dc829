"""A small ResNet for small images, after "Deep Residual Learning for Image Recognition"
(He et al. 2016, the CIFAR variant: three stages of basic blocks, global average pooling)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass
from torch import nn

from .registry import Size, register_model


@dataclass(config=ConfigDict(extra="forbid"))
class ResNetConfig:
    widths: list[Size] = Field(default_factory=lambda: [16, 32, 64])
    blocks_per_stage: Size = 2


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:  # projection shortcut when the shape changes
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, cfg: ResNetConfig, input_shape, num_outputs: int):
        super().__init__()
        c = input_shape[0]
        stem = [nn.Conv2d(c, cfg.widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(cfg.widths[0]), nn.ReLU()]
        stages, cin = [], cfg.widths[0]
        for i, w in enumerate(cfg.widths):
            for j in range(cfg.blocks_per_stage):
                stages.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.features = nn.Sequential(
            *stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )  # (B, C, H, W) -> (B, widths[-1])
        self.head = nn.Linear(cin, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("resnet", ResNetConfig, "small ResNet (basic blocks, 3 stages) for small images", input_kind="image")
def build_resnet(cfg: ResNetConfig, input_shape, num_outputs):
    return ResNet(cfg, input_shape, num_outputs)
