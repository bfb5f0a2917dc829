"""Turning a trained model into the plain, inference-only module that every exporter consumes.

This is the one place where model-specific rewrites happen before export, so TorchScript, ONNX,
quantization and pruning all see the same graph:

- LoRA: adapters are merged into their base weights here (W <- W + scale * B @ A), so the
  exported file is an ordinary dense model with no adapter branches.
- GPT-style models whose forward returns ``(logits, loss)`` or ``{"logits": ...}`` are wrapped so
  the exported graph has exactly one output: the logits.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.lora import merge_into_base


class LogitsOnly(nn.Module):
    """Keeps only the logits of a model whose forward returns a tuple or a dict."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, dict):
            return out["logits"]
        return out[0]


def prepare_for_export(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` ready for export: eval mode, float32, CPU, adapters merged, logits out.

    Args:
        model: the trained model (left untouched).
        example: one batch of inputs, used to see what the model's forward returns.

    Returns:
        A module whose forward maps a float32 batch to one tensor of logits (or regression values).
    """
    model = copy.deepcopy(model).float().cpu().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model = merge_into_base(model)
    with torch.no_grad():
        out = model(example)
    if isinstance(out, (tuple, list, dict)):
        model = LogitsOnly(model).eval()
    return model
