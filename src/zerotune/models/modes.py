"""Switching a model to eval mode for a look, and back to exactly the modes it had."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module):
    """Eval mode and no_grad for a look at the model, then every module's own mode back.

    ``model.train(was)`` would not do: a fine-tune keeps frozen batch-norm layers in eval mode
    inside a model in train mode, and one call to ``train()`` would wake them up.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, training in modes:
            m.training = training
