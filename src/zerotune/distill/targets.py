"""Training batches that carry the teacher's logits next to the labels.

Without augmentation the teacher's logits are computed once for the whole training split and kept
in memory, row for row (keyed by example index); each batch slices them with its shuffled index.
With augmentation the batch is augmented here and the teacher sees that same augmented batch; the
random draws come from a generator seeded by (seed, epoch, batch), so a resumed run sees the same
batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..data.batches import EpochBatches, Split, epoch_permutation
from .teacher import Teacher


@dataclass
class SoftTargets:
    """What a distillation batch's loss needs besides the student's output."""

    labels: torch.Tensor  # (B,) int64 classes
    teacher: torch.Tensor  # (B, C) teacher logits, float32


@dataclass
class DistillSplit(Split):
    """The training split with its teacher; ``epoch_batches`` yields ``(x, SoftTargets)``.

    ``x`` and ``y`` stay the plain split, so anything that reads them (metrics on a training
    subset, sample images) sees an ordinary `Split`.
    """

    teacher: Teacher | None = None
    cache: torch.Tensor | None = None  # (N, C) teacher logits of every row, when there is no augmentation
    augment: Callable | None = None  # (x, generator) -> x, when the data is augmented

    def to(self, device) -> "DistillSplit":
        cache = self.cache.to(device) if self.cache is not None else None
        return DistillSplit(self.x.to(device), self.y.to(device), teacher=self.teacher, cache=cache,
                            augment=self.augment)

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> "DistillBatches":
        perm = epoch_permutation(len(self), seed, epoch, self.x.device)
        return DistillBatches(self, perm, batch_size, seed=seed, epoch=epoch)


def with_teacher(split: Split, teacher: Teacher, augment: Callable | None) -> DistillSplit:
    """`split` with the teacher's logits: cached now (no augmentation) or computed per batch (augmentation)."""
    cache = None if augment is not None else teacher.logits(split.x)
    return DistillSplit(split.x, split.y, teacher=teacher, cache=cache, augment=augment)


@dataclass
class DistillBatches(EpochBatches):
    """One epoch of a `DistillSplit`: ``[i] -> (x, SoftTargets)``."""

    seed: int = 0
    epoch: int = 0

    def __getitem__(self, i: int) -> tuple[torch.Tensor, SoftTargets]:
        split: DistillSplit = self.split
        idx = self.perm[i * self.batch_size:(i + 1) * self.batch_size]
        x, y = split.x[idx], split.y[idx]
        if split.cache is not None:
            return x, SoftTargets(y, split.cache[idx])
        if split.augment is not None:
            x = split.augment(x, batch_generator(self.seed, self.epoch, i, x.device))
        return x, SoftTargets(y, split.teacher.logits(x))


def batch_generator(seed: int, epoch: int, batch: int, device) -> torch.Generator:
    """The augmentation generator of one batch, a pure function of its position in training."""
    # wrapped into the 64 bits a generator takes: large seeds (train.seed goes to 2**32 - 1) would overflow them
    return torch.Generator(device=device).manual_seed(((seed * 1_000_003 + epoch) * 100_003 + batch + 1) % 2**64)
