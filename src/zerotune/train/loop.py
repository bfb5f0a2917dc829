"""The training loop: micro-batches, accumulation, clipping, schedules, evaluation, checkpoints."""

from __future__ import annotations

import collections
import contextlib
import copy
import math
import statistics
import time
from pathlib import Path

import torch

from ..data.batches import num_batches
from ..data.bundle import DataBundle
from ..errors import UserError
from ..run.files import RunDir
from ..tasks.supervised import Task
from . import checkpoint as ckpt
from .callbacks import Callback, TrainState
from .env import rng_state, set_rng_state
from .optim import build_optimizer, lr_multiplier, set_lr


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


def check_monitor(tc, task: Task) -> None:
    """Refuse a train.monitor the task never produces: no best checkpoint, no early stop would follow."""
    if tc.monitor == "auto":
        return
    produced = ["train/epoch_loss", *task.metric_names("val")]
    if tc.monitor not in produced:
        raise UserError(f"train.monitor {tc.monitor!r} is never measured for this task; allowed: auto, "
                        f"{', '.join(produced)}")


def check_progress(checkpoint: ckpt.Checkpoint, data: DataBundle, tc) -> None:
    """A checkpoint's position must lie within this data's epoch."""
    micro = num_batches(len(data.train), tc.batch_size)
    b = checkpoint.state.progress.batch_in_epoch
    if b >= micro:
        raise UserError(f"checkpoint {checkpoint.path} is invalid: {ckpt.STATE_FILE}: progress.batch_in_epoch is "
                        f"{b}, past the epoch of {micro} micro-batches")


def fit(
    model: torch.nn.Module,
    data: DataBundle,
    task: Task,
    cfg,
    run_dir: Path,
    device: torch.device,
    callbacks: list[Callback] = (),
    resume: ckpt.Checkpoint | None = None,
    augment=None,
    groups: list[dict] | None = None,
    freeze=None,
) -> TrainState:
    """Train `model` on `data` and keep best/last checkpoints in `run_dir/checkpoints`.

    Args:
        model: the model, already initialised (and seeded).
        data: train/val/test splits.
        task: loss and metrics.
        cfg: the whole Config (optim, schedule and train groups are read).
        run_dir: the run directory.
        device: where to train.
        callbacks: called at each event, in order.
        resume: a checkpoint to continue from (see `checkpoint.load_checkpoint`).
        augment: optional callable (x, generator) -> x applied to training batches.
        groups: optimizer parameter groups (default: the model's trainable parameters).
        freeze: optional schedule with ``apply(model, epoch)`` that sets which parameters train in
            each epoch; it must be a pure function of the epoch (``epoch=None``: every parameter
            that ever trains), so a resumed run has exactly the frozen set it stopped with.

    Returns:
        The final TrainState.
    """
    tc, oc = cfg.train, cfg.optim
    model.to(device)
    train, val = data.train.to(device), data.val.to(device)
    if freeze is not None:
        freeze.apply(model, None)  # callbacks see, at fit start, every parameter that will train
    optimizer = build_optimizer(model, oc, groups)
    scaler = torch.amp.GradScaler("cuda", enabled=tc.precision == "fp16")
    autocast = _autocast(device, tc.precision)
    aug_gen = torch.Generator(device=device).manual_seed(tc.seed + 1)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    # Compiled for training steps only; evaluation and callbacks use the plain module (same weights).
    forward = torch.compile(model) if tc.compile else model
    penalised = [p for p in params if p.ndim >= 2]

    micro_per_epoch = num_batches(len(train), tc.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / tc.accumulate)
    total = steps_per_epoch * tc.epochs
    if tc.max_steps is not None:
        total = min(total, tc.max_steps)
    monitor, mode = _monitor(tc, task)
    state = TrainState(model=model, total_steps=total, steps_per_epoch=steps_per_epoch, epochs=tc.epochs,
                       monitor=monitor, monitor_mode=mode)
    ckpt_dir = RunDir(run_dir).checkpoints
    writer = ckpt.CheckpointWriter()
    if resume is not None:
        ckpt.remove_partial_writes(ckpt_dir)
        _restore(resume, model, optimizer, scaler, aug_gen, state, callbacks)
        state.resumed_from_step = state.step
    watch = DivergenceWatch(oc.lr)

    pending_best = None  # (tensors, aliases, info): best weights copied, not yet on disk
    last_save = time.monotonic()

    def save_last():
        nonlocal pending_best, last_save
        # `last` keeps the last sound state: a blown-up one is never written over it.
        if state.loss is not None:
            watch.check(float(state.loss), f"at step {state.step}")
        if not torch.isfinite(torch.nn.utils.get_total_norm(params)):
            raise Diverged(f"weights became too large or not finite at step {state.step}; "
                           f"lower optim.lr (now {oc.lr:g}) or set optim.clip_norm")
        if pending_best is not None:  # the best on disk always matches what `last` records
            writer.submit(ckpt_dir / "best", *pending_best)
            pending_best = None
        last_save = time.monotonic()
        # Everything is copied here, on the training thread; the writer thread only serialises.
        opt_plain, tensors = ckpt.optimizer_to_parts(optimizer)
        rng_plain, rng_tensors = rng_state()
        tensors.update({f"rng.{k}": v for k, v in rng_tensors.items()})
        tensors["rng.augment"] = aug_gen.get_state().cpu()
        saved = copy.deepcopy({
            "progress": state.progress_dict(), "optimizer": opt_plain, "rng": rng_plain,
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in callbacks},
        })
        writer.submit(ckpt_dir / "last", *ckpt.model_tensors(model), saved, tensors)

    def evaluate():
        nonlocal pending_best
        state.metrics = {"train/epoch_loss": epoch_loss, **task.quick_metrics(model, val, "val")}
        state.num_evals += 1
        state.history.append({"step": state.step, "epoch": state.epoch, **state.metrics})
        value = state.metrics.get(monitor)
        state.is_best = value is not None and not math.isnan(value) and (
            state.best is None or (value > state.best if mode == "max" else value < state.best))
        if state.is_best:
            state.best, state.best_step = value, state.step
            pending_best = (*ckpt.model_tensors(model), {"step": state.step, "metric": monitor, "value": value})
        for cb in callbacks:
            cb.on_eval_end(state)

    for cb in callbacks:
        cb.on_fit_start(state)
    model.train()
    t_start = time.perf_counter() - state.elapsed
    t_log, samples_log, steps_log = time.perf_counter(), 0, 0
    epoch_loss = float("nan")
    try:
        done = state.step >= total or state.stop_requested
        while not done and state.epoch < tc.epochs:
            if freeze is not None:  # after fit start and after each evaluation, which reset train mode
                freeze.apply(model, state.epoch)
            batches = train.epoch_batches(tc.seed, state.epoch, tc.batch_size)
            b = state.batch_in_epoch  # micro-batch index; checkpoints fall on step boundaries
            running, n_micro = torch.zeros((), device=device), 0
            while b < micro_per_epoch:
                group = min(tc.accumulate, micro_per_epoch - b)
                # Gradients are cleared here rather than after the step, so step_end callbacks can read them.
                optimizer.zero_grad(set_to_none=True)
                for _ in range(group):
                    x, y = batches[b]
                    if augment is not None:
                        x = augment(x, aug_gen)
                    with autocast:
                        loss = task.loss(forward(x), y)
                    if oc.l1 or oc.l2:
                        loss = loss + _penalty(penalised, oc.l1, oc.l2)
                    scaler.scale(loss / group if group > 1 else loss).backward()
                    running += loss.detach()
                    n_micro += 1
                    samples_log += len(x)
                    b += 1
                state.lr = set_lr(optimizer, lr_multiplier(cfg.schedule, state.step, total, steps_per_epoch))
                measure = (state.step + 1) % cfg.log.grad_norm_every == 0
                state.grad_norm = _clip(params, optimizer, scaler, oc, measure=measure)
                if measure:
                    if not torch.isfinite(state.grad_norm):
                        raise Diverged(f"gradients became {float(state.grad_norm)} at step {state.step + 1}; "
                                       f"lower optim.lr (now {oc.lr:g}) or set optim.clip_norm")
                    watch.check(float(loss.detach()), f"at step {state.step + 1}")
                scaler.step(optimizer)
                scaler.update()
                state.step += 1
                state.batch_in_epoch = b
                state.loss = loss.detach()
                steps_log += 1
                if state.step % cfg.log.scalars_every == 0:
                    now = time.perf_counter()
                    state.samples_per_sec = samples_log / max(now - t_log, 1e-9)
                    state.step_time = (now - t_log) / steps_log
                    t_log, samples_log, steps_log = now, 0, 0
                state.elapsed = time.perf_counter() - t_start
                for cb in callbacks:
                    cb.on_step_end(state)
                if tc.checkpoint_every_steps and state.step % tc.checkpoint_every_steps == 0 and b < micro_per_epoch:
                    save_last()
                if state.step >= total:
                    break
            epoch_loss = float(running) / max(n_micro, 1)  # mean over the micro-batches this process ran
            epoch_complete = b >= micro_per_epoch
            if epoch_complete:
                state.epoch += 1
                state.batch_in_epoch = 0
            last = state.step >= total or state.epoch >= tc.epochs
            watch.check(epoch_loss, f"in epoch {state.epoch}")
            if state.epoch % tc.eval_every == 0 or last:
                evaluate()
            state.elapsed = time.perf_counter() - t_start
            for cb in callbacks:
                cb.on_epoch_end(state)
            done = last or state.stop_requested
            # Short epochs would spend their time writing checkpoints: save at most every N seconds.
            if done or time.monotonic() - last_save >= tc.checkpoint_every_seconds:
                save_last()
    finally:
        writer.wait()  # the last checkpoint is on disk before fit returns
    state.elapsed = time.perf_counter() - t_start
    for cb in callbacks:
        cb.on_fit_end(state)
    return state


def _monitor(tc, task: Task) -> tuple[str, str]:
    default_metric, default_mode = task.monitor_default
    metric = default_metric if tc.monitor == "auto" else tc.monitor
    if tc.monitor_mode != "auto":
        return metric, tc.monitor_mode
    higher = any(s in metric for s in ("accuracy", "r2", "f1", "auc"))
    return metric, "max" if higher else "min"


def _autocast(device: torch.device, precision: str):
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


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
    norm = torch.nn.utils.get_total_norm(grads)
    if oc.clip_value:
        torch.nn.utils.clip_grad_value_(params, oc.clip_value)
    if oc.clip_norm:
        after_value = torch.nn.utils.get_total_norm(grads) if oc.clip_value else norm
        torch.nn.utils.clip_grads_with_norm_(params, oc.clip_norm, after_value)
    return norm.detach()


def _restore(checkpoint: ckpt.Checkpoint, model, optimizer, scaler, aug_gen, state: TrainState, callbacks) -> None:
    saved, tensors = checkpoint.state, checkpoint.tensors
    ckpt.fit_weights(model, checkpoint.weights, checkpoint.path / ckpt.MODEL_FILE)
    ckpt.optimizer_from_parts(optimizer, saved.optimizer.model_dump(), tensors)
    global_rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.") and k != "rng.augment"}
    set_rng_state(saved.rng.model_dump(mode="json"), global_rng)
    if "rng.augment" in tensors:
        aug_gen.set_state(tensors["rng.augment"])
    if saved.scaler:
        scaler.load_state_dict(saved.scaler)
    for k, v in saved.progress.model_dump().items():
        setattr(state, k, v)
    saved_callbacks = saved.callbacks
    for cb in callbacks:
        if type(cb).__name__ in saved_callbacks:
            cb.load_state_dict(saved_callbacks[type(cb).__name__])
