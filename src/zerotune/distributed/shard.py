"""Each rank's part of the data: its shard of every global batch, and evaluation split across ranks.

`train.batch_size` is the global batch: each of the world's ranks takes batch_size / world_size
examples of every batch of the epoch's shuffled order, so the ranks together see exactly what one
process would, and DDP's average of their gradients is the gradient of the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..errors import UserError


def check_shardable(world_size: int, batch_size: int, batches_per_epoch: int) -> None:
    """Refuse a global batch the ranks cannot share evenly, or fewer batches than ranks."""
    if batch_size % world_size:
        raise UserError(f"train.batch_size {batch_size} is the global batch and must divide among {world_size} "
                        f"ranks; use a multiple of {world_size}")
    if world_size > batches_per_epoch:
        raise UserError(f"{world_size} ranks but only {batches_per_epoch} training batch(es) per epoch; "
                        f"use at most {batches_per_epoch} processes or a smaller train.batch_size")


class ShardedBatches:
    """This rank's rows of each batch of an epoch: ``len()`` and ``[i] -> (x, y)``.

    After each ``[i]``, `share` is the factor on this rank's mean loss that makes DDP's mean of the
    ranks' gradients the gradient of the whole batch: 1.0 when the batch divides evenly (every full
    batch), rows × world_size / batch rows for a short last batch, and 0 for a rank whose part of a
    last batch smaller than the world is empty (it runs one row, counted for nothing, so that it
    still takes part in the gradient all-reduce).

    Args:
        batches: the epoch's global batches (``len()`` and ``[i] -> (x, y)``).
        rank: this rank.
        world_size: the number of ranks.
    """

    def __init__(self, batches, rank: int, world_size: int):
        self.batches, self.rank, self.world = batches, rank, world_size
        self.share = 1.0

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batches[i]
        n = len(y)
        base, extra = divmod(n, self.world)  # the first n % world ranks take one row more
        lo = self.rank * base + min(self.rank, extra)
        hi = lo + base + (self.rank < extra)
        self.share = (hi - lo) * self.world / n
        if lo == hi:
            lo, hi = 0, 1
        if hasattr(y, "rows"):  # targets that know how their rows lie in x (preference pairs) slice both
            return y.rows(x, lo, hi)
        return x[lo:hi], y[lo:hi]


class GatherShards(torch.nn.Module):
    """Evaluation split across ranks: each rank runs its share of every batch and all get the whole output.

    Wrapped around the model for validation, it gives every rank the outputs one process would
    compute for the whole split, so the metrics (and the decisions taken on them: best checkpoint,
    early stopping) are the single-process ones, identical on every rank.
    """

    def __init__(self, model: torch.nn.Module, rank: int, world_size: int, timed=None):
        super().__init__()
        self.model, self.rank, self.world = model, rank, world_size
        self._timed = timed or (lambda fn: fn())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.tensor_split(x, self.world)
        rows = max(len(c) for c in chunks)
        mine = self.model(chunks[self.rank]) if len(chunks[self.rank]) else None
        if mine is None:  # fewer rows than ranks: this rank's part is empty, but it still takes part
            mine = self.model(x[:1])[:0]
        padded = torch.zeros((rows, *mine.shape[1:]), dtype=mine.dtype, device=mine.device)
        padded[:len(mine)] = mine
        out = [torch.empty_like(padded) for _ in range(self.world)]
        self._timed(lambda: dist.all_gather(out, padded))
        return torch.cat([o[:len(c)] for o, c in zip(out, chunks)])
