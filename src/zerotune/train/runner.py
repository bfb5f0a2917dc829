"""How a Trainer's steps are synchronised and its checkpoints saved and loaded: the `Runner`.

The Trainer knows no process group: it asks its runner at each place where one process and a
job of several differ. `LocalRun` is one process; `distributed/` has `DDPRun` (a full copy of the
model per rank) and `FSDPRun` (sharded), which the distributed entry point builds and hands in.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import torch

from . import checkpoint as ckpt
from .saving import SaveJob, epoch_sums


class Runner(Protocol):
    """One method per place where training in one process and in several differ."""

    is_main: bool  # the process that writes the run directory
    rank: int
    world_size: int

    def wrap(self, model: torch.nn.Module, aug_gen: torch.Generator, groups: list[dict] | None,
             find_unused: bool) -> tuple[torch.nn.Module, list[dict] | None]:
        """Before the optimizer is built: the module that runs training steps, and the optimizer's
        parameter groups (`find_unused`: some parameters start training later)."""

    def callback_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model the callbacks see."""

    def refresh(self, model: torch.nn.Module) -> None:
        """Bring `callback_model` up to date before callbacks read the weights."""

    def shard(self, batches):
        """This process's part of an epoch's batches (``len()`` and ``[i] -> (x, y)``)."""

    def share(self, batches) -> float:
        """The factor on the loss of the micro-batch last taken from `shard`'s batches."""

    def sync(self, last_micro_step: bool) -> contextlib.AbstractContextManager:
        """The context of one micro-step's backward: gradients are synchronised on the last of a step."""

    def gather_rows(self, values: list[float]) -> list[list[float]]:
        """Every process's `values`, in rank order."""

    def eval_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` as evaluation runs it."""

    def epoch_loss(self, total: torch.Tensor, count: int) -> float:
        """The epoch's mean micro-batch loss over every process."""

    def any_rank(self, flag: bool) -> bool:
        """Whether `flag` holds in any process, so that all take the same decision (stop, save)."""

    def model_tensors(self, model: torch.nn.Module) -> tuple[dict, dict] | None:
        """The weights to keep as a best (as `checkpoint.model_tensors`); None where this process keeps none."""

    def save(self, job: SaveJob) -> None:
        """Save `last` (and a pending best)."""

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, checkpoint: ckpt.Checkpoint) -> None:
        """Weights and optimizer state from `checkpoint`."""

    def restore_rng(self, tensors: dict[str, torch.Tensor]) -> None:
        """This process's own generators from a checkpoint's tensors, after the saving process's."""


class LocalRun:
    """Training in one process: a world of one, where every collective is the value itself."""

    is_main, rank, world_size = True, 0, 1

    def wrap(self, model, aug_gen, groups, find_unused):
        return model, groups

    def callback_model(self, model):
        return model

    def refresh(self, model) -> None:
        pass

    def shard(self, batches):
        return batches

    def share(self, batches) -> float:
        return 1.0

    def sync(self, last_micro_step: bool):
        return contextlib.nullcontext()

    def gather_rows(self, values):
        return [list(values)]

    def eval_model(self, model):
        return model

    def epoch_loss(self, total, count) -> float:
        return float(total) / max(count, 1)

    def any_rank(self, flag: bool) -> bool:
        return flag

    def model_tensors(self, model):
        return ckpt.model_tensors(model)

    def rng_tensors(self) -> dict[str, torch.Tensor]:
        """Other processes' generator states to save beside this one's: none."""
        return {}

    def save(self, job: SaveJob) -> None:
        self.save_whole(job, epoch_sums(self.gather_rows(job.epoch_sums)))

    def save_whole(self, job: SaveJob, sums: dict) -> None:
        """Check the state, then queue `last` with full weights and the whole optimizer state for the writer."""
        job.check_sound()
        with_best = job.checkpoints.start_last()
        state, tensors = job.training_state(sums, True)
        tensors.update(self.rng_tensors())
        job.checkpoints.submit_last((*ckpt.model_tensors(job.model), state, tensors), with_best)

    def load(self, model, optimizer, checkpoint) -> None:
        ckpt.fit_weights(model, checkpoint.weights, checkpoint.path / ckpt.MODEL_FILE)
        ckpt.optimizer_from_parts(optimizer, checkpoint.state.optimizer.model_dump(), checkpoint.tensors)

    def restore_rng(self, tensors) -> None:
        pass
