"""Sharded training (``train.distributed.strategy = "fsdp"``): FSDP2's `fully_shard` around the model.

Each rank keeps 1/world_size of every weight, gradient and optimizer moment. A transformer's
layers (the entries of its ModuleLists: the GPT's blocks, a Hugging Face model's encoder or decoder
layers) are sharded one by one, then the root (embeddings, heads, whatever is left), so that only
one layer's full weights are gathered at a time. Checkpoints go through torch.distributed.checkpoint:
each rank writes its shards, and a job with any number of ranks reads them back (resharding).
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_state_dict)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from ..errors import UserError
from .ddp import DDPRun
from .env import DistContext


def layers_to_shard(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The entries of every ModuleList of `model` that holds parameters, outermost lists only."""
    found: list[torch.nn.Module] = []
    seen: set[int] = set()
    for _, module in model.named_modules():
        if id(module) in seen or not isinstance(module, torch.nn.ModuleList):
            continue
        for sub in module.modules():
            seen.add(id(sub))
        found.extend(m for m in module if any(True for _ in m.parameters()))
    return found


def shard_model(model: torch.nn.Module, device: torch.device, precision: str) -> torch.nn.Module:
    """`fully_shard` each layer, then the root; bf16/fp16 parameters in compute only on CUDA."""
    kwargs = {}
    if device.type == "cuda" and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)
    for layer in layers_to_shard(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    return model


class FSDPRun(DDPRun):
    """`DDPRun` with the model sharded: what differs is the wrapping, the gradient sync and checkpoints.

    Build it before the optimizer: `fully_shard` replaces the model's parameters by sharded ones.
    """

    sharded = True

    def __init__(self, ctx: DistContext, model: torch.nn.Module, aug_gen: torch.Generator, seed: int,
                 precision: str = "32"):
        from .rng import seed_rank

        self.ctx, self.aug_gen = ctx, aug_gen
        names = {id(p): n for n, p in model.named_parameters()}
        self._aliases = _tied(model)
        # Rank 0's callbacks (TensorBoard's views, text samples) run the model alone: they get a plain copy.
        self.replica = copy.deepcopy(model) if ctx.is_main else None
        self.module = shard_model(model, ctx.device, precision)
        params = dict(model.named_parameters())
        self._new = {old: params[n] for old, n in names.items()}  # id of a parameter before sharding -> after
        seed_rank(ctx, seed, aug_gen)

    def groups(self, groups: list[dict] | None) -> list[dict] | None:
        """Optimizer parameter groups made for the unsharded model, pointing at the sharded parameters."""
        if groups is None:
            return None
        return [{**g, "params": [self._new[id(p)] for p in g["params"]]} for g in groups]

    def sync(self, last_micro_step: bool):
        """Gradients reduce-scattered on the last micro-step of a step only."""
        self.module.set_requires_gradient_sync(last_micro_step)
        return contextlib.nullcontext()

    def model_tensors(self, model: torch.nn.Module):
        """The full weights on rank 0 (gathered from every rank: a collective), as `checkpoint.model_tensors`."""
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.is_main:
            return None
        return {k: v for k, v in full.items() if k not in self._aliases}, dict(self._aliases)

    def callback_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model rank 0's callbacks see: the plain copy, refreshed by `refresh`."""
        return self.replica if self.replica is not None else model

    def refresh(self, model: torch.nn.Module) -> None:
        """Copy the sharded weights into rank 0's plain copy (a collective: every rank calls it)."""
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if self.replica is not None:
            self.replica.load_state_dict(full)
            self.replica.train(model.training)

    def save_shards(self, model: torch.nn.Module, optimizer, path: Path) -> None:
        """Every rank writes its shard of the weights and optimizer state to `path` (a DCP directory)."""
        msd, osd = get_state_dict(model, optimizer)
        self.ctx.timed(lambda: dcp.save({"model": msd, "optim": osd}, checkpoint_id=path))

    def load_shards(self, model: torch.nn.Module, optimizer, path: Path) -> None:
        """Weights and optimizer state from a DCP directory saved by any number of ranks."""
        if not path.is_dir():
            raise UserError(f"checkpoint {path.parent} has no sharded optimizer state ({path.name}/): it was not "
                            f"saved by sharded training; resume it with train.distributed.strategy = 'ddp'")
        msd, osd = get_state_dict(model, optimizer)
        state = {"model": msd, "optim": osd}
        self.ctx.timed(lambda: dcp.load(state, checkpoint_id=path))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def _tied(model: torch.nn.Module) -> dict[str, str]:
    """{name: the name it is tied to} for state-dict entries sharing memory (e.g. embedding and output weights).

    Gathered weights are separate copies, so the ties are read from the model before it is sharded.
    """
    kept: dict[tuple, str] = {}
    aliases = {}
    for name, t in model.state_dict().items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() and key in kept:
            aliases[name] = kept[key]
        else:
            kept[key] = name
    return aliases
