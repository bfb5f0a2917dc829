"""In-memory batching by slicing tensors with a shuffled index (no per-sample Python, no collate)."""

from __future__ import annotations

import torch

from .bundle import Split


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random generator of one epoch's batches, a pure function of (seed, epoch).

    Deriving it from the epoch number, rather than from a running generator, lets a resumed run
    continue mid-epoch with exactly the batches the uninterrupted run would have seen.
    """
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def epoch_permutation(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffle order of one epoch (see `epoch_generator`)."""
    return torch.randperm(n, generator=epoch_generator(seed, epoch)).to(device)


def iter_batches(split: Split, batch_size: int, perm: torch.Tensor | None = None, start: int = 0):
    """Yield (x, y) batches of `split` in `perm` order (or in order), from batch number `start`."""
    n = len(split)
    for b in range(start, num_batches(n, batch_size)):
        if perm is None:
            sl = slice(b * batch_size, (b + 1) * batch_size)
            yield split.x[sl], split.y[sl]
        else:
            idx = perm[b * batch_size:(b + 1) * batch_size]
            yield split.x[idx], split.y[idx]


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
