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

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_state_dict,
                                                     set_state_dict)
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from ..errors import UserError
from ..run.files import DCP_DIR
from ..train import checkpoint as ckpt
from ..train.saving import SaveJob, epoch_sums
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

    Args:
        ctx: this process's job.
        seed: train.seed.
        precision: train.precision (bf16 and fp16 parameters in compute on CUDA).
    """

    def __init__(self, ctx: DistContext, seed: int, precision: str = "32"):
        super().__init__(ctx, seed)
        self.precision = precision

    def wrap(self, model: torch.nn.Module, aug_gen: torch.Generator, groups: list[dict] | None,
             find_unused: bool = False) -> tuple[torch.nn.Module, list[dict] | None]:
        """The model sharded in place (`fully_shard` replaces its parameters, so this comes before the
        optimizer), and the groups made for the unsharded model pointing at the sharded parameters."""
        from .rng import seed_rank

        self.aug_gen = aug_gen
        names = {id(p): n for n, p in model.named_parameters()}
        self._aliases = _tied(model)
        # Rank 0's callbacks (TensorBoard's views, text samples) run the model alone: they get a plain copy.
        self.replica = copy.deepcopy(model) if self.is_main else None
        self.module = shard_model(model, self.ctx.device, self.precision)
        params = dict(model.named_parameters())
        new = {old: params[n] for old, n in names.items()}  # id of a parameter before sharding -> after
        seed_rank(self.ctx, self.seed, aug_gen)
        if groups is not None:
            groups = [{**g, "params": [new[id(p)] for p in g["params"]]} for g in groups]
        return self.module, groups

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

    def save(self, job: SaveJob) -> None:
        """Each rank writes its shards (DCP) into a temporary directory that rank 0 made; rank 0 adds the
        full weights and the state, then renames it into place, as `save_checkpoint` does."""
        main, path = self.is_main, job.checkpoints.run.checkpoint("last")
        job.check_sound()  # every rank: the weight norm is a collective
        job.checkpoints.submit_best()  # (only rank 0 holds one)
        tmp = self.ctx.broadcast(ckpt.temporary_dir(path) if main else None)
        msd, osd = get_state_dict(job.model, job.optimizer)
        self.ctx.timed(lambda: dcp.save({"model": msd, "optim": osd}, checkpoint_id=tmp / DCP_DIR))
        weights = self.model_tensors(job.model)
        # The optimizer's state is in the shards (its groups stay in state.json).
        state, tensors = job.training_state(epoch_sums(self.gather_rows(job.epoch_sums)), False)
        tensors.update(self.rng_tensors())
        if main:
            job.checkpoints.write_last(weights, state, tensors, tmp)
        self.ctx.barrier()

    def load(self, model: torch.nn.Module, optimizer, checkpoint: ckpt.Checkpoint) -> None:
        """Weights and optimizer state from the checkpoint's DCP directory, which any number of ranks saved
        (DCP reshards)."""
        path = checkpoint.path / DCP_DIR
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
