"""The runner of `train.distributed.strategy`: DDP (a full copy of the model per rank) or FSDP (sharded)."""

from __future__ import annotations

import torch

from .ddp import DDPRun
from .env import DistContext


def make_run(ctx: DistContext, model: torch.nn.Module, aug_gen: torch.Generator, tc, find_unused: bool = False):
    """The DDPRun or FSDPRun that `tc.distributed.strategy` names (built before the optimizer)."""
    if tc.distributed.strategy == "fsdp":
        from .fsdp import FSDPRun

        return FSDPRun(ctx, model, aug_gen, tc.seed, tc.precision)
    return DDPRun(ctx, model, aug_gen, tc.seed, find_unused)
