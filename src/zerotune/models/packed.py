"""Packed rows: several examples side by side in each row of token ids, for a causal LM that reads them.

Packing removes the padding of batches whose examples differ in length. Each example's positions
start again from 0, which makes transformers' attention keep every example to itself (a
block-diagonal causal mask), so a packed row computes what its examples would apart. Only the
positions the loss reads (``keep``) are projected to the vocabulary: the output layer's cost and
its (tokens, vocabulary) logits then grow with the answers, not with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedRows:
    """A training batch packed into rows; ``len()`` is the number of examples, as for a plain batch."""

    ids: torch.Tensor  # (R, W) token ids
    positions: torch.Tensor  # (R, W) each example's positions, from 0
    keep: torch.Tensor  # (R, W) bool: positions whose next-token logits the loss reads
    examples: int

    def __len__(self) -> int:
        return self.examples
