"""A split's tensors and their batching: slicing with a shuffled index (no per-sample Python, no collate)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Split:
    """One split of an in-memory data set: inputs and targets, row for row."""

    x: torch.Tensor  # (N, *input_shape) float32, normalised
    y: torch.Tensor  # (N,) int64 classes or float32 (standardised) targets
    # Per-example sampling weights (train.sampler "balanced"); None: each epoch is a shuffle.
    draw_weights: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device), self.draw_weights)

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> "EpochBatches":
        """The shuffled micro-batches of one epoch, a pure function of (seed, epoch).

        The training loop only needs ``len()`` and ``[i] -> (x, y)``; a language-model corpus
        (data/corpus.py) offers the same with random windows instead of examples.
        """
        if self.draw_weights is not None:
            return EpochBatches(self, epoch_draw(self.draw_weights, seed, epoch, self.x.device), batch_size)
        return EpochBatches(self, epoch_permutation(len(self), seed, epoch, self.x.device), batch_size)

    def balanced(self) -> "Split":
        """This split with epochs drawn so that each class comes up equally often (weights 1/count)."""
        counts = torch.bincount(self.y.cpu())
        return Split(self.x, self.y, (1.0 / counts.double())[self.y.cpu()])

    def sample_inputs(self, n: int) -> torch.Tensor:
        """The first n inputs (for shape checks and graph tracing)."""
        return self.x[:n]


@dataclass
class EpochBatches:
    """One epoch of a split in mini-batches, in a fixed shuffled order: ``len()`` and ``[i] -> (x, y)``."""

    split: Split
    perm: torch.Tensor
    batch_size: int

    def __len__(self) -> int:
        return (len(self.perm) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.perm[i * self.batch_size:(i + 1) * self.batch_size]
        return self.split.x[idx], self.split.y[idx]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random generator of one epoch's batches, a pure function of (seed, epoch).

    Deriving it from the epoch number, rather than from a running generator, lets a resumed run
    continue mid-epoch with exactly the batches the uninterrupted run would have seen.
    """
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def epoch_permutation(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The shuffle order of one epoch (see `epoch_generator`)."""
    return torch.randperm(n, generator=epoch_generator(seed, epoch)).to(device)


def epoch_draw(weights: torch.Tensor, seed: int, epoch: int, device) -> torch.Tensor:
    """One epoch's order drawn with replacement in proportion to `weights` (see `epoch_generator`)."""
    n = len(weights)
    return torch.multinomial(weights, n, replacement=True, generator=epoch_generator(seed, epoch)).to(device)


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
