"""Gradual unfreezing (Howard & Ruder 2018, "Universal Language Model Fine-tuning", ULMFiT).

The head trains from the first epoch; every `every` epochs one more block below it joins. The
number of trainable blocks is a pure function of the epoch, so a resumed run recomputes exactly
the frozen set it had when it stopped, with nothing saved about it: the known failure of
callbacks that unfreeze "one more group" on each event and forget how many they had done.
"""

from __future__ import annotations


def unfrozen_blocks(epoch: int, n_blocks: int, every: int = 1, start: int = 0) -> int:
    """How many of the blocks below the head train during `epoch` (0-based).

    Args:
        epoch: epochs completed before the current one.
        n_blocks: blocks below the head.
        every: epochs between unfreezing one more block.
        start: blocks that train from the first epoch on.

    Returns:
        A number in [0, n_blocks]; the blocks nearest the head are the ones that train.
    """
    return max(0, min(n_blocks, start + epoch // every))


def first_epoch_training(block: int, n_blocks: int, every: int = 1, start: int = 0) -> int:
    """The first epoch in which block `block` (0 = nearest the input) trains."""
    depth = n_blocks - block  # 1 for the block just below the head
    return max(0, (depth - start) * every)
