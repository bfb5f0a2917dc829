"""The runner of `train.distributed.strategy`: DDP (a full copy of the model per rank) or FSDP (sharded)."""

from __future__ import annotations

from .ddp import DDPRun
from .env import DistContext, check_strategy


def make_runner(ctx: DistContext, tc, oc) -> DDPRun:
    """The DDPRun or FSDPRun that `tc.distributed.strategy` names, for the Trainer of this rank.

    Args:
        ctx: this process's job.
        tc: the TrainConfig (``seed``, ``precision``, ``distributed.strategy``).
        oc: the OptimConfig, checked against the strategy.
    """
    check_strategy(tc, oc)
    if tc.distributed.strategy == "fsdp":
        from .fsdp import FSDPRun

        return FSDPRun(ctx, tc.seed, tc.precision)
    return DDPRun(ctx, tc.seed)
