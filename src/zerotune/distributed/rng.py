"""Every rank's random generators in rank 0's checkpoint, so a resumed job repeats the uninterrupted one.

Dropout and augmentation draw from each rank's own generators; rank 0 saves them all (as
``dist.rank<r>.*`` tensors beside its own) and each rank takes its own back on resume.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from .env import DistContext


def seed_rank(ctx: DistContext, seed: int, aug_gen: torch.Generator) -> None:
    """Give ranks other than 0 their own dropout and augmentation streams (rank 0 keeps a single run's)."""
    if ctx.rank:
        torch.manual_seed(seed + 1_000_003 * ctx.rank)
        aug_gen.manual_seed(seed + 1 + 1_000_003 * ctx.rank)


def _own_states(aug_gen: torch.Generator) -> dict[str, torch.Tensor]:
    states = {"torch": torch.get_rng_state(), "augment": aug_gen.get_state().cpu()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    return states


def gather_rng(ctx: DistContext, aug_gen: torch.Generator) -> dict[str, torch.Tensor]:
    """On rank 0, every other rank's generator states as ``dist.rank<r>.<name>`` tensors; {} elsewhere.

    Every rank must call it at the same point (it is a collective).
    """
    gathered = [None] * ctx.world_size if ctx.is_main else None
    ctx.timed(lambda: dist.gather_object(_own_states(aug_gen), gathered, dst=0))
    if not ctx.is_main:
        return {}
    return {f"dist.rank{r}.{k}": v for r, states in enumerate(gathered) if r for k, v in states.items()}


def restore_rng(ctx: DistContext, tensors: dict[str, torch.Tensor], aug_gen: torch.Generator) -> None:
    """Set this rank's generators from a checkpoint's ``dist.rank<r>.*`` tensors (rank 0's are restored as usual)."""
    prefix = f"dist.rank{ctx.rank}."
    mine = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not mine:
        return
    torch.set_rng_state(mine["torch"])
    aug_gen.set_state(mine["augment"])
    if "cuda" in mine and torch.cuda.is_available():
        torch.cuda.set_rng_state(mine["cuda"])
