"""DistributedDataParallel around the model, its gradient all-reduce timed for the ``dist/`` views.

After backward every rank holds the same, averaged gradients: clipping then measures the global
norm on each rank without any further collective, and every rank takes the same optimizer step.
"""

from __future__ import annotations

import time

import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from .env import DistContext


def wrap_ddp(model: torch.nn.Module, ctx: DistContext, find_unused: bool = False) -> DistributedDataParallel:
    """The model in DDP (weights broadcast from rank 0), its all-reduce time added to `ctx.comm_seconds`.

    Args:
        model: the model, already on `ctx.device`.
        ctx: this process's job.
        find_unused: let some parameters get no gradient in a step (a fine-tune that unfreezes as it goes).
    """
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    ddp = DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)
    ddp.register_comm_hook(ctx, _timed_allreduce)
    return ddp


def _timed_allreduce(ctx, bucket):
    """DDP's own all-reduce of one gradient bucket; the time from its start to its end counts as collective.

    No annotations: DDP reads them and would take the postponed ones (strings) for wrong types.
    """
    t0 = time.perf_counter()

    def done(fut):
        ctx.comm_seconds += time.perf_counter() - t0
        return fut.value()

    return allreduce_hook(None, bucket).then(done)


class DDPRun:
    """What the Trainer does differently with several ranks, one method per place it does so.

    Args:
        ctx: this process's job.
        model: the model, already on `ctx.device` (weights identical on every rank after this).
        aug_gen: the Trainer's augmentation generator (seeded per rank here; saved per rank).
        seed: train.seed.
        find_unused: see `wrap_ddp`.
    """

    sharded = False  # FSDPRun: weights and optimizer state split across ranks

    def __init__(self, ctx: DistContext, model: torch.nn.Module, aug_gen: torch.Generator, seed: int,
                 find_unused: bool = False):
        from .rng import seed_rank

        self.ctx, self.aug_gen = ctx, aug_gen
        self.module = wrap_ddp(model, ctx, find_unused)
        seed_rank(ctx, seed, aug_gen)

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    def groups(self, groups: list[dict] | None) -> list[dict] | None:
        """The optimizer parameter groups (DDP keeps the model's own parameters)."""
        return groups

    def callback_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model rank 0's callbacks see (DDP: the model itself)."""
        return model

    def refresh(self, model: torch.nn.Module) -> None:
        """Bring `callback_model` up to date (nothing to do with DDP)."""

    def model_tensors(self, model: torch.nn.Module):
        """The weights on rank 0 (as `checkpoint.model_tensors`), None on the other ranks."""
        from ..train.checkpoint import model_tensors

        return model_tensors(model) if self.is_main else None

    def shard(self, batches):
        """This rank's part of each of an epoch's global batches (see `ShardedBatches`)."""
        from .shard import ShardedBatches

        return ShardedBatches(batches, self.ctx.rank, self.ctx.world_size)

    def sync(self, last_micro_step: bool):
        """A context for one micro-step's backward: gradients all-reduced only on the last of a step."""
        import contextlib

        return contextlib.nullcontext() if last_micro_step else self.module.no_sync()

    def eval_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` for evaluation, each rank running its share of the rows (see `GatherShards`)."""
        from .shard import GatherShards

        return GatherShards(model, self.ctx.rank, self.ctx.world_size, self.ctx.timed)

    def epoch_loss(self, total: torch.Tensor, count: int) -> float:
        """The epoch's mean micro-batch loss over every rank."""
        return self.ctx.mean(total, count)

    def any_rank(self, flag: bool) -> bool:
        """Whether `flag` holds on any rank, so every rank takes the same decision (stop, save)."""
        return self.ctx.any(flag)

    def rng_tensors(self) -> dict[str, torch.Tensor]:
        """The other ranks' generator states, on rank 0 (a collective: every rank calls it at each save)."""
        from .rng import gather_rng

        return gather_rng(self.ctx, self.aug_gen)

    def restore_rng(self, tensors: dict[str, torch.Tensor]) -> None:
        from .rng import restore_rng

        restore_rng(self.ctx, tensors, self.aug_gen)

    def barrier(self) -> None:
        """Every rank waits here until rank 0 has handed its checkpoint to the writer."""
        self.ctx.barrier()
