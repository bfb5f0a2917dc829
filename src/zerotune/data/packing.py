"""Packed training batches of instruction data (``sft.packing``): a step's examples in rows without padding.

Each micro-batch holds the same examples as the unpacked one (the epoch's shuffle is the same), so
a step's loss is the same mean over the same answer tokens; only the layout changes. The examples
are placed first-fit, longest first, into rows as wide as the data's rows (``data.max_length``),
and the rows are cut to the longest of them. Labels come back for the kept positions only, matching
the (N, V) logits a model computes for `PackedRows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.packed import PackedRows
from .batches import EpochBatches, epoch_permutation
from .sft import IGNORE, SFTSplit


@dataclass
class PackedSFTSplit(SFTSplit):
    """An `SFTSplit` whose epochs come in packed micro-batches."""

    def to(self, device) -> "PackedSFTSplit":
        return packed_split(super().to(device))

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> "PackedBatches":
        return PackedBatches(self, epoch_permutation(len(self), seed, epoch, self.x.device), batch_size)


def packed_split(split: SFTSplit) -> PackedSFTSplit:
    """`split` (its tensors shared, not copied) with packed training batches."""
    return PackedSFTSplit(split.x, split.y, split.draw_weights, split.lengths, split.prompt_lengths)


class PackedBatches(EpochBatches):
    """The micro-batches of one epoch as (`PackedRows`, labels of the kept positions (N,))."""

    def __getitem__(self, i: int) -> tuple[PackedRows, torch.Tensor]:
        idx = self.perm[i * self.batch_size:(i + 1) * self.batch_size].cpu().tolist()
        return pack(self.split, idx, self.split.x.shape[1])


def fill_rows(lengths: list[int], width: int) -> list[list[int]]:
    """Indices into `lengths` grouped into rows of at most `width` tokens: first fit, longest first."""
    rows: list[list[int]] = []
    room: list[int] = []
    for j in sorted(range(len(lengths)), key=lambda k: -lengths[k]):
        r = next((r for r, free in enumerate(room) if free >= lengths[j]), None)
        if r is None:
            rows.append([]), room.append(width)
            r = len(rows) - 1
        rows[r].append(j)
        room[r] -= lengths[j]
    return rows


def pack(split: SFTSplit, idx: list[int], width: int) -> tuple[PackedRows, torch.Tensor]:
    """The examples `idx` of `split` packed into rows; the labels of the positions the loss reads."""
    lengths = [max(int(split.lengths[j]), 1) for j in idx]
    rows = fill_rows(lengths, width)
    wide = max(sum(lengths[j] for j in row) for row in rows)
    dev = split.x.device
    ids = torch.zeros((len(rows), wide), dtype=split.x.dtype, device=dev)  # padding ids are never read
    labels = torch.full((len(rows), wide), IGNORE, dtype=split.y.dtype, device=dev)
    positions = torch.zeros((len(rows), wide), dtype=torch.long, device=dev)
    for r, row in enumerate(rows):
        at = 0
        for j in row:
            n, k = lengths[j], idx[j]
            ids[r, at:at + n], labels[r, at:at + n] = split.x[k, :n], split.y[k, :n]
            positions[r, at:at + n] = torch.arange(n, device=dev)
            at += n
        positions[r, at:] = torch.arange(wide - at, device=dev)  # the padding: a segment of its own, never read
    keep = labels != IGNORE
    return PackedRows(ids, positions, keep, len(idx)), labels[keep]
