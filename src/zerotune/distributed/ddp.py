"""DistributedDataParallel around the model, its gradient all-reduce timed for the ``dist/`` views.

After backward every rank holds the same, averaged gradients: clipping then measures the global
norm on each rank without any further collective, and every rank takes the same optimizer step.
"""

from __future__ import annotations

import time

import torch
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from ..train.runner import LocalRun
from ..train.saving import SaveJob, epoch_sums
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


class DDPRun(LocalRun):
    """A job of several processes, each with a full copy of the model in DDP: `LocalRun` with the
    collectives that make every rank take the same steps and decisions (see `train.runner.Runner`).

    Args:
        ctx: this process's job.
        seed: train.seed.
    """

    def __init__(self, ctx: DistContext, seed: int):
        self.ctx, self.seed = ctx, seed
        self.is_main, self.rank, self.world_size = ctx.is_main, ctx.rank, ctx.world_size

    def wrap(self, model: torch.nn.Module, aug_gen: torch.Generator, groups: list[dict] | None,
             find_unused: bool = False) -> tuple[torch.nn.Module, list[dict] | None]:
        """The model in DDP (weights identical on every rank after this; see `wrap_ddp`) and the groups as
        they are; `aug_gen`, the Trainer's augmentation generator, is seeded per rank here and saved per rank."""
        from .rng import seed_rank

        self.aug_gen = aug_gen
        self.module = wrap_ddp(model, self.ctx, find_unused)
        seed_rank(self.ctx, self.seed, aug_gen)
        return self.module, groups

    def model_tensors(self, model: torch.nn.Module):
        """The weights on rank 0 (as `checkpoint.model_tensors`), None on the other ranks."""
        return super().model_tensors(model) if self.is_main else None

    def shard(self, batches):
        """This rank's part of each of an epoch's global batches (see `ShardedBatches`)."""
        from .shard import ShardedBatches

        return ShardedBatches(batches, self.rank, self.world_size)

    def share(self, batches) -> float:
        """`ShardedBatches.share`: a short last batch's parts weighted by their rows."""
        return batches.share

    def sync(self, last_micro_step: bool):
        """Gradients all-reduced only on the last micro-step of a step."""
        import contextlib

        return contextlib.nullcontext() if last_micro_step else self.module.no_sync()

    def gather_rows(self, values: list[float]) -> list[list[float]]:
        return self.ctx.all_gather_floats(values).tolist()

    def eval_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` for evaluation, each rank running its share of the rows (see `GatherShards`)."""
        from .shard import GatherShards

        return GatherShards(model, self.rank, self.world_size, self.ctx.timed)

    def epoch_loss(self, total: torch.Tensor, count: int) -> float:
        return self.ctx.mean(total, count)

    def any_rank(self, flag: bool) -> bool:
        return self.ctx.any(flag)

    def rng_tensors(self) -> dict[str, torch.Tensor]:
        """The other ranks' generator states, on rank 0 (a collective: every rank calls it at each save)."""
        from .rng import gather_rng

        return gather_rng(self.ctx, self.aug_gen)

    def save(self, job: SaveJob) -> None:
        """Rank 0 writes (the weights are the same on every rank), holding every rank's random generators;
        the others wait at a barrier until it has handed its checkpoint to the writer."""
        sums = epoch_sums(self.gather_rows(job.epoch_sums))
        if self.is_main:
            self.save_whole(job, sums)
        else:
            self.rng_tensors()
        self.ctx.barrier()

    def restore_rng(self, tensors: dict[str, torch.Tensor]) -> None:
        from .rng import restore_rng

        restore_rng(self.ctx, tensors, self.aug_gen)
