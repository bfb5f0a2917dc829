"""The training loop: a `Trainer` whose step, evaluation and checkpoint are each a short method, and `fit`.

Micro-batches, accumulation, clipping, schedules, divergence checks, best/last checkpoints.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..compute.precision import autocast_for, resolve_precision
from ..config import Config, TrainConfig
from ..data.batches import num_batches
from ..data.bundle import DataBundle
from ..errors import UserError
from ..run.files import RunDir
from ..tasks.mixing import mixed_loss
from ..tasks.supervised import Task
from . import checkpoint as ckpt
from .callbacks import Callback, TrainState
from .env import compile_module, rng_state, set_rng_state
from .optim import build_optimizer, lr_multiplier, set_lr
from .options import TrainOptions
from .plateau import Plateau
from .runner import LocalRun
from .saving import Checkpoints, SaveJob


class Diverged(UserError):
    """The loss became NaN or infinite, or blew up to BLOWUP times its running median."""


BLOWUP = 1e3  # a loss this many times its running median counts as diverged
MEDIAN_FLOOR = 1e-3  # a loss near zero (an almost perfect fit) is not stopped by noise above it
MEDIAN_WINDOW = 100  # checked losses the running median is taken over


class DivergenceWatch:
    """Checks losses where the loop reads them anyway (measured steps, epoch ends, before each save)."""

    def __init__(self, lr: float):
        self.lr = lr
        self.seen: collections.deque[float] = collections.deque(maxlen=MEDIAN_WINDOW)

    def check(self, loss: float, where: str) -> None:
        """Raise Diverged if `loss` is not finite or has blown up; otherwise remember it."""
        if not math.isfinite(loss):
            raise Diverged(f"training loss became {loss} {where}; lower optim.lr (now {self.lr:g}) "
                           f"or set optim.clip_norm")
        if self.seen:
            median = statistics.median(self.seen)
            if median > 0 and loss > BLOWUP * max(median, MEDIAN_FLOOR):
                raise Diverged(f"training loss blew up to {loss:.4g} {where}, over {BLOWUP:g}x its running median "
                               f"{median:.4g}; lower optim.lr (now {self.lr:g}) or set optim.clip_norm")
        self.seen.append(loss)


def check_monitor(tc: TrainConfig, task: Task) -> None:
    """Refuse a train.monitor the task never produces: no best checkpoint, no early stop would follow."""
    if tc.monitor == "auto":
        return
    produced = ["train/epoch_loss", *task.metric_names("val")]
    if tc.monitor not in produced:
        raise UserError(f"train.monitor {tc.monitor!r} is never measured for this task; allowed: auto, "
                        f"{', '.join(produced)}")


def check_progress(checkpoint: ckpt.Checkpoint, data: DataBundle, tc: TrainConfig) -> None:
    """A checkpoint's position must lie within this data's epoch."""
    micro = num_batches(len(data.train), tc.batch_size)
    b = checkpoint.state.progress.batch_in_epoch
    if b >= micro:
        raise UserError(f"checkpoint {checkpoint.path} is invalid: {ckpt.STATE_FILE}: progress.batch_in_epoch is "
                        f"{b}, past the epoch of {micro} micro-batches")


class Trainer:
    """One training run: `fit()` runs epochs of steps, evaluates, and keeps best/last checkpoints.

    Read it top down: `fit` → `_run_epoch` → `step` (→ `_forward_backward`) → `_end_epoch`
    (→ `_evaluate`, `_save_last`). Callbacks get `state` at each event and nothing else. Where one
    process and several differ, the Trainer asks its runner (`train/runner.py`).

    Args:
        model: the model, already initialised (and seeded).
        data: train/val/test splits.
        task: loss and metrics.
        train: batch size, epochs, precision, evaluation and checkpoint intervals.
        run_dir: the run directory; checkpoints go to ``run_dir/checkpoints``.
        device: where to train.
        options: optimizer, schedule, logging, callbacks, augmentation, parameter groups, freezing,
            the runner (see `TrainOptions`; default: all defaults).
    """

    def __init__(self, model: torch.nn.Module, data: DataBundle, task: Task, train: TrainConfig, run_dir: Path,
                 device: torch.device, options: TrainOptions | None = None):
        o = options or TrainOptions()
        if train.precision == "auto":  # `train` resolves it, with its warnings; a direct caller gets it here
            train = train.model_copy(update={"precision": resolve_precision("auto", device)})
        self.model, self.task, self.device = model.to(device), task, device
        self.phase = o.phase or _untimed
        self.tc, self.oc, self.schedule, self.log = train, o.optim, o.schedule, o.log
        self.callbacks, self.augment, self.freeze, self.mix = list(o.callbacks), o.augment, o.freeze, o.mix
        self.train_split, self.val = data.train.to(device), data.val.to(device)
        if o.freeze is not None:
            o.freeze.apply(model, None)  # callbacks see, at fit start, every parameter that will train
        self.aug_gen = torch.Generator(device=device).manual_seed(train.seed + 1)
        self.runner = o.runner or LocalRun()
        # Before the optimizer: FSDP replaces the parameters by sharded ones. DDP must look for
        # parameters without a gradient only where frozen ones start training later.
        unfreezes = o.freeze is not None and getattr(o.freeze, "unfreezes", True)
        module, groups = self.runner.wrap(model, self.aug_gen, o.groups, unfreezes)
        self.optimizer = build_optimizer(model, o.optim, groups)
        self.scaler = torch.amp.GradScaler("cuda", enabled=train.precision == "fp16")
        self.autocast = autocast_for(device, train.precision)
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        # Compiled for training steps only; evaluation and callbacks use the plain module (same weights).
        self.forward = compile_module(module) if train.compile else module
        self.penalised = [p for p in self.params if p.ndim >= 2]
        self.micro_per_epoch = num_batches(len(self.train_split), train.batch_size)
        self.state = self._initial_state(task)
        self.plateau = Plateau(o.schedule.patience, o.schedule.factor, o.schedule.threshold, o.schedule.min_lr_ratio,
                               self.state.monitor_mode) if o.schedule.name == "plateau" else None
        self.checkpoints = Checkpoints(RunDir(run_dir))
        self.watch = DivergenceWatch(o.optim.lr)
        self._epoch_sum, self._epoch_micro = torch.zeros((), device=device), 0  # this rank's, for train/epoch_loss

    def _initial_state(self, task: Task) -> TrainState:
        """Step 0: the step budget and the monitored metric."""
        steps_per_epoch = math.ceil(self.micro_per_epoch / self.tc.accumulate)
        total = steps_per_epoch * self.tc.epochs
        if self.tc.max_steps is not None:
            total = min(total, self.tc.max_steps)
        monitor, mode = _monitor(self.tc, task)
        return TrainState(model=self.runner.callback_model(self.model), total_steps=total,
                          steps_per_epoch=steps_per_epoch, epochs=self.tc.epochs, monitor=monitor, monitor_mode=mode)

    def fit(self, resume: ckpt.Checkpoint | None = None) -> TrainState:
        """Train until the step budget, the last epoch or a stop request; return the final state.

        Args:
            resume: a checkpoint to continue from (see `checkpoint.load_checkpoint`).
        """
        state = self.state
        if resume is not None:
            ckpt.remove_partial_writes(self.checkpoints.run.checkpoints)
            self._restore(resume)
            state.resumed_from_step = state.step
        self.start()
        try:
            done = state.step >= state.total_steps or state.stop_requested
            while not done and state.epoch < self.tc.epochs:
                done = self._run_epoch()
        finally:
            self.checkpoints.writer.wait()  # the last checkpoint is on disk before fit returns
        state.elapsed = time.perf_counter() - self._t_start
        self.end()
        return state

    def start(self) -> None:
        """Fit start: the fit_start event, train mode and the clocks (`fit` calls it; so does `zerotune profile`)."""
        self.checkpoints.last_save = time.monotonic()
        self._emit("on_fit_start")
        self.model.train()
        self._t_start = time.perf_counter() - self.state.elapsed
        self._t_log, self._samples_log, self._steps_log = time.perf_counter(), 0, 0
        self._data_seconds = 0.0

    def end(self) -> None:
        """Fit end: the fit_end event."""
        self._emit("on_fit_end")

    def _emit(self, event: str) -> None:
        if event in _READ_MODEL:  # FSDP: rank 0's callbacks see a gathered copy
            self.runner.refresh(self.model)
        for cb in self.callbacks:
            getattr(cb, event)(self.state)

    def _run_epoch(self) -> bool:
        """One epoch, or what is left of it after a resume; returns whether training is done."""
        state = self.state
        if self.freeze is not None:  # after fit start and after each evaluation, which reset train mode
            self.freeze.apply(self.model, state.epoch)
        if state.batch_in_epoch == 0:  # not again in a run resumed mid-epoch: its epoch started before the checkpoint
            self._epoch_sum, self._epoch_micro = torch.zeros((), device=self.device), 0  # (restored then)
            self._emit("on_epoch_start")
        batches = self.runner.shard(self.train_split.epoch_batches(self.tc.seed, state.epoch, self.tc.batch_size))
        while state.batch_in_epoch < self.micro_per_epoch:  # checkpoints fall on step boundaries
            self.step(batches)
            if state.step >= state.total_steps:
                break
        return self._end_epoch()

    def step(self, batches) -> None:
        """One optimizer step over up to `train.accumulate` micro-batches of an epoch's `batches`, from
        `state.batch_in_epoch` on, then the step_end event. Each phase runs inside `self.phase(name)`."""
        state, b = self.state, self.state.batch_in_epoch
        group = min(self.tc.accumulate, self.micro_per_epoch - b)
        # Gradients are cleared here rather than after the step, so step_end callbacks can read them.
        with self.phase("optimizer"):
            self.optimizer.zero_grad(set_to_none=True)
        weights = self._unit_weights(batches, b, group)
        for k in range(group):
            t_data = time.perf_counter()
            with self.phase("data"):
                x, y = batches[b]
                if self.augment is not None:
                    x = self.augment(x, self.aug_gen)
                if self.mix is not None:
                    x, *y = self.mix(x, y, self.aug_gen)  # y: [y_a, y_b, lam]
            self._data_seconds += time.perf_counter() - t_data
            parts = (group, self.runner.share(batches)) if weights is None else (1, weights[k])
            # Several processes: gradients synchronised on the last micro-step only; a short batch's shares weighted.
            with self.runner.sync(last_micro_step=k == group - 1):
                loss = self._forward_backward(x, y, *parts)
            b += 1
        with self.phase("optimizer"):
            state.lr_multiplier = lr_multiplier(self.schedule, state.step, state.total_steps, state.steps_per_epoch)
            if self.plateau is not None:
                state.lr_multiplier *= self.plateau.multiplier
            state.lr = set_lr(self.optimizer, state.lr_multiplier)
            self._clip_and_check(loss)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        state.step += 1
        state.batch_in_epoch = b
        state.loss = loss.detach()
        with self.phase("logging"):
            self._time_step()
            self._emit("on_step_end")
        every = self.tc.checkpoint_every_steps
        if every and state.step % every == 0 and b < self.micro_per_epoch:
            self._save_last()

    def _unit_weights(self, batches, b: int, group: int) -> list[float] | None:
        """For a task whose loss is a mean over units of varying number (an instruction-tuning task's
        labelled tokens), the factor on each of the step's micro-batch means that makes the step's
        gradient the mean over all of its units on every rank: its units over the step's, times the
        world size that DDP's average divides by. None for any other task."""
        count = getattr(self.task, "loss_units", None)
        if count is None:
            return None
        mine = []
        for i in range(b, b + group):
            y = batches[i][1]  # (a rank's empty part of a short last batch counts for nothing)
            mine.append(count(y) if self.runner.share(batches) > 0 else 0)
        world = self.runner.world_size
        total = sum(row[0] for row in self.runner.gather_rows([float(sum(mine))]))
        return [n * world / max(total, 1.0) for n in mine]

    def _forward_backward(self, x: torch.Tensor, y, group: int, share: float = 1.0) -> torch.Tensor:
        """Loss of one micro-batch (penalties included), its scaled gradients added to `.grad`.

        `y` is the targets, or [y_a, y_b, lam] of a mixed batch. The gradient is that of loss × share /
        group: `group` micro-batches make the step, and `share` is this rank's weight in a batch split
        unevenly across ranks (see ShardedBatches), or, for a loss over varying units, the micro-batch's
        whole weight in the step (see `_unit_weights`, with `group` 1).
        """
        with self.phase("forward"):
            with self.autocast:
                out = self.forward(x)
                loss = mixed_loss(self.task.loss, out, *y) if self.mix is not None else self.task.loss(out, y)
            if self.oc.l1 or self.oc.l2:
                loss = loss + _penalty(self.penalised, self.oc.l1, self.oc.l2)
        with self.phase("backward"):
            scaled = loss * share if share != 1.0 else loss
            self.scaler.scale(scaled / group if group > 1 else scaled).backward()
        self._epoch_sum += loss.detach()
        self._epoch_micro += 1
        self._samples_log += len(x)
        return loss

    def _clip_and_check(self, loss: torch.Tensor) -> None:
        """Clip the gradients; every `log.grad_norm_every` steps measure their norm and check for divergence."""
        state = self.state
        measure = (state.step + 1) % self.log.grad_norm_every == 0
        state.grad_norm = _clip(self.params, self.optimizer, self.scaler, self.oc, measure=measure)
        if measure:
            if not torch.isfinite(state.grad_norm):
                raise Diverged(f"gradients became {float(state.grad_norm)} at step {state.step + 1}; "
                               f"lower optim.lr (now {self.oc.lr:g}) or set optim.clip_norm")
            self.watch.check(float(loss.detach()), f"at step {state.step + 1}")

    def _time_step(self) -> None:
        """Throughput and the share of time spent fetching batches over each `log.scalars_every` steps;
        the training time so far."""
        state = self.state
        self._steps_log += 1
        if state.step % self.log.scalars_every == 0:
            now = time.perf_counter()
            state.samples_per_sec = self._samples_log / max(now - self._t_log, 1e-9)
            state.step_time = (now - self._t_log) / self._steps_log
            state.data_share = self._data_seconds / max(now - self._t_log, 1e-9)
            self._t_log, self._samples_log, self._steps_log, self._data_seconds = now, 0, 0, 0.0
        state.elapsed = time.perf_counter() - self._t_start

    def _end_epoch(self) -> bool:
        """Check the epoch's loss, evaluate when due, emit epoch_end and save `last`; return whether done."""
        state = self.state
        epoch_loss = self.runner.epoch_loss(self._epoch_sum, self._epoch_micro)  # over every process's micro-batches
        if state.batch_in_epoch >= self.micro_per_epoch:  # complete, not cut short by the step budget
            state.epoch += 1
            state.batch_in_epoch = 0
        last = state.step >= state.total_steps or state.epoch >= self.tc.epochs
        self.watch.check(epoch_loss, f"in epoch {state.epoch}")
        if state.epoch % self.tc.eval_every == 0 or last:
            self._evaluate(epoch_loss)
        state.elapsed = time.perf_counter() - self._t_start
        self._emit("on_epoch_end")
        state.stop_requested = self.runner.any_rank(state.stop_requested)  # rank 0's callbacks decide for all
        done = last or state.stop_requested
        # Short epochs would spend their time writing checkpoints: save at most every N seconds.
        due = done or time.monotonic() - self.checkpoints.last_save >= self.tc.checkpoint_every_seconds
        if self.runner.any_rank(due):  # a save is a collective: every rank saves when one is due
            self._save_last()
        return done

    def _evaluate(self, epoch_loss: float) -> None:
        """Validation metrics; a new best is copied now and written with the next `last`."""
        state = self.state
        model = self.runner.eval_model(self.model)  # with several ranks, each runs a share of the rows
        state.metrics = {"train/epoch_loss": epoch_loss, **self.task.quick_metrics(model, self.val, "val")}
        state.num_evals += 1
        state.history.append({"step": state.step, "epoch": state.epoch, **state.metrics})
        value = state.metrics.get(state.monitor)
        state.is_best = value is not None and not math.isnan(value) and (
            state.best is None or (value > state.best if state.monitor_mode == "max" else value < state.best))
        if self.plateau is not None:
            self.plateau.update(value)
        if state.is_best:
            state.best, state.best_step = value, state.step
            info = {"step": state.step, "metric": state.monitor, "value": value}
            weights = self.runner.model_tensors(self.model)
            if weights is not None:  # None off rank 0 (under FSDP every rank helps gather them)
                self.checkpoints.pending_best = (*weights, info)
        self._emit("on_eval_end")

    def _save_last(self) -> None:
        """Save `last` (and a pending `best`) through the runner, which decides who writes what and when."""
        mine = [float(self._epoch_sum), float(self._epoch_micro)]
        self.runner.save(SaveJob(self.checkpoints, self.model, self.optimizer, mine, self._check_sound,
                                 self._training_state))

    def _check_sound(self) -> None:
        """`last` keeps the last sound state: a blown-up one is never written over it."""
        state = self.state
        if state.loss is not None:
            self.watch.check(float(state.loss), f"at step {state.step}")
        if not torch.isfinite(_full(torch.nn.utils.get_total_norm(self.params))):
            raise Diverged(f"weights became too large or not finite at step {state.step}; "
                           f"lower optim.lr (now {self.oc.lr:g}) or set optim.clip_norm")

    def _restore_epoch_sums(self, saved: ckpt.StateFile) -> None:
        """This rank's running sums of a checkpoint taken mid-epoch; with another number of ranks than
        wrote it, rank 0 takes the totals (the epoch's mean is the same, summed in another order)."""
        if saved.epoch_sums is None or saved.progress.batch_in_epoch == 0:
            return
        sums, counts = saved.epoch_sums.loss_sums, saved.epoch_sums.micro_batches
        rank, world = self.runner.rank, self.runner.world_size
        if len(sums) == world:
            total, count = sums[rank], counts[rank]
        else:
            total, count = (sum(sums), sum(counts)) if rank == 0 else (0.0, 0)
        self._epoch_sum = torch.tensor(total, dtype=self._epoch_sum.dtype, device=self.device)
        self._epoch_micro = count

    def _training_state(self, epoch_sums: dict, optimizer: bool = True) -> tuple[dict, dict[str, torch.Tensor]]:
        """Everything but the weights, copied here on the training thread; the writer thread only serialises.

        `epoch_sums`: every rank's running sums of the epoch (`saving.epoch_sums`).
        `optimizer`: False under FSDP, whose optimizer state goes to the sharded checkpoint (its groups stay here).
        """
        if optimizer:
            opt_plain, tensors = ckpt.optimizer_to_parts(self.optimizer)
        else:
            opt_plain, tensors = {"param_groups": self.optimizer.state_dict()["param_groups"], "state": {}}, {}
        rng_plain, rng_tensors = rng_state()
        tensors.update({f"rng.{k}": v for k, v in rng_tensors.items()})
        tensors["rng.augment"] = self.aug_gen.get_state().cpu()
        saved = copy.deepcopy({
            "progress": self.state.progress_dict(), "epoch_sums": epoch_sums, "optimizer": opt_plain, "rng": rng_plain,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "schedule": self.plateau.state_dict() if self.plateau is not None else None,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks},
        })
        return saved, tensors

    def _restore(self, checkpoint: ckpt.Checkpoint) -> None:
        """Weights, optimizer, random generators, scaler, progress and callback states from `checkpoint`."""
        saved, tensors = checkpoint.state, checkpoint.tensors
        self.runner.load(self.model, self.optimizer, checkpoint)
        global_rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.") and k != "rng.augment"}
        set_rng_state(saved.rng.model_dump(mode="json"), global_rng)
        if "rng.augment" in tensors:
            self.aug_gen.set_state(tensors["rng.augment"])
        self.runner.restore_rng(tensors)
        self._restore_epoch_sums(saved)
        if saved.scaler:
            self.scaler.load_state_dict(saved.scaler)
        if self.plateau is not None and saved.schedule is not None:
            self.plateau.load_state_dict(saved.schedule.model_dump())
        for k, v in saved.progress.model_dump().items():
            setattr(self.state, k, v)
        for cb in self.callbacks:
            if type(cb).__name__ in saved.callbacks:
                cb.load_state_dict(saved.callbacks[type(cb).__name__])


def fit(model: torch.nn.Module, data: DataBundle, task: Task, train: TrainConfig | Config, run_dir: Path,
        device: torch.device, callbacks: Sequence[Callback] = (), *, resume: ckpt.Checkpoint | None = None,
        **options) -> TrainState:
    """Train `model` on `data` and keep best/last checkpoints in `run_dir/checkpoints`.

    Args:
        model, data, task, run_dir, device: as for `Trainer`.
        train: the TrainConfig; a whole Config may stand in for it and for the options optim, schedule and log.
        callbacks: called at each event, in order.
        resume: a checkpoint to continue from (see `checkpoint.load_checkpoint`).
        options: the other fields of `TrainOptions` (optim, schedule, log, augment, mix, groups, freeze,
            phase, runner).

    Returns:
        The final TrainState.
    """
    if isinstance(train, Config):
        options.update(optim=train.optim, schedule=train.schedule, log=train.log)
        train = train.train
    trainer = Trainer(model, data, task, train, run_dir, device, TrainOptions(callbacks=callbacks, **options))
    return trainer.fit(resume)


# The events at which callbacks read the weights (TensorBoard's views, text samples).
_READ_MODEL = ("on_fit_start", "on_eval_end", "on_fit_end")


def resolve_monitor(tc: TrainConfig, task: Task) -> tuple[str, str]:
    """The metric `train.monitor` names for `task` (``auto`` resolved), and ``"max"`` or ``"min"``."""
    return _monitor(tc, task)


def _monitor(tc, task: Task) -> tuple[str, str]:
    default_metric, default_mode = task.monitor_default
    metric = default_metric if tc.monitor == "auto" else tc.monitor
    if tc.monitor_mode != "auto":
        return metric, tc.monitor_mode
    higher = any(s in metric for s in ("accuracy", "r2", "f1", "auc"))
    return metric, "max" if higher else "min"


def _untimed(name: str) -> contextlib.nullcontext:
    """The phase hook when nothing measures the phases of a step."""
    return contextlib.nullcontext()


def _penalty(params, l1: float, l2: float) -> torch.Tensor:
    total = 0.0
    if l1:
        total = total + l1 * sum(p.abs().sum() for p in params)
    if l2:
        total = total + l2 * sum((p * p).sum() for p in params)
    return total


def _clip(params, optimizer, scaler, oc, measure: bool):
    """Unscale, clip by value and/or norm, and return the pre-clip global norm when asked or needed."""
    if not (measure or oc.clip_norm or oc.clip_value):
        return None
    scaler.unscale_(optimizer)
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)  # under FSDP a DTensor: the norm over every rank's shards
    if oc.clip_value:
        torch.nn.utils.clip_grad_value_(params, oc.clip_value)
    if oc.clip_norm:
        after_value = torch.nn.utils.get_total_norm(grads) if oc.clip_value else norm
        torch.nn.utils.clip_grads_with_norm_(params, oc.clip_norm, after_value)
    return _full(norm).detach()


def _full(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor: a DTensor (FSDP's sharded norms) gathered, any other tensor as it is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t
