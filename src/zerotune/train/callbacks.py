"""The callback protocol and the built-in callbacks that are not about TensorBoard.

Events, in order: fit_start, (epoch_start, (step_end)*, [eval_end], epoch_end)*, fit_end. A run
resumed mid-epoch does not repeat that epoch's epoch_start. At step_end the parameters' `.grad`
still hold the gradients of the step just taken. A callback reads the
`TrainState` it is handed; the only thing it may change is `state.stop_requested`. Callbacks that
must survive a resume implement `state_dict()` / `load_state_dict()` (JSON-ready).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainState:
    """What the loop exposes to callbacks."""

    model: torch.nn.Module
    total_steps: int
    steps_per_epoch: int
    epochs: int
    step: int = 0  # optimizer steps done
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # next micro-batch of the current epoch
    lr_multiplier: float = 0.0  # the schedule's factor on every group's base rate, at the last step
    lr: float = 0.0  # the first group's rate at the last step: its base rate × lr_multiplier
    loss: torch.Tensor | None = None  # last micro-batch loss (detached; call float() to read)
    grad_norm: torch.Tensor | None = None  # global gradient norm before clipping, when measured
    samples_per_sec: float = 0.0
    step_time: float = 0.0  # seconds per optimizer step over the last logging interval
    data_share: float = 0.0  # share of that interval spent taking (and augmenting) batches: the input pipeline
    metrics: dict[str, float] = field(default_factory=dict)  # latest evaluation
    history: list[dict[str, float]] = field(default_factory=list)  # evaluations of this process
    num_evals: int = 0  # evaluations since the run started, resumes included
    monitor: str = "val/loss"
    monitor_mode: str = "min"
    best: float | None = None
    best_step: int | None = None
    is_best: bool = False  # the latest evaluation is the best so far
    resumed_from_step: int | None = None
    stop_requested: bool = False
    stop_reason: str | None = None
    elapsed: float = 0.0  # training seconds, summed over resumes

    def progress_dict(self) -> dict[str, Any]:
        """The JSON-ready part of the state, saved in checkpoints."""
        return {
            k: getattr(self, k)
            for k in ("step", "epoch", "batch_in_epoch", "metrics", "num_evals", "best", "best_step", "elapsed",
                      "stop_requested", "stop_reason")
        }


class Callback:
    """Override the events you need; each gets the loop's `TrainState`."""

    def on_fit_start(self, state: TrainState) -> None: ...
    def on_epoch_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_eval_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_fit_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None: ...


class EarlyStopping(Callback):
    """Request a stop when `state.monitor` has not improved by `min_delta` for `patience` evaluations."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best: float | None = None
        self.bad_evals = 0

    def on_eval_end(self, state: TrainState) -> None:
        value = state.metrics.get(state.monitor)
        if value is None or math.isnan(value):
            return
        sign = 1 if state.monitor_mode == "max" else -1
        if self.best is None or sign * (value - self.best) > self.min_delta:
            self.best, self.bad_evals = value, 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.patience:
            state.stop_requested = True
            state.stop_reason = (
                f"early stopping: {state.monitor} did not improve for {self.patience} evaluations "
                f"(best {self.best:.4g})"
            )

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.bad_evals = d.get("best"), d.get("bad_evals", 0)


def progress_callback(description: str) -> Callback:
    """A live bar on a terminal; elsewhere (nohup, CI, Slurm, ``> log``) one plain line per evaluation."""
    return ProgressBar(description) if sys.stdout.isatty() else ProgressLines(description)


class ProgressLines(Callback):
    """One plain, uncut line per evaluation, for logs: step, losses, validation metrics, best monitored value."""

    def __init__(self, description: str = "train"):
        self.description = description

    def on_fit_start(self, state: TrainState) -> None:
        start = f"from step {state.step} " if state.step else ""
        print(f"{self.description}: {start}to step {state.total_steps} ({state.epochs} epochs of "
              f"{state.steps_per_epoch} steps)", flush=True)

    def on_eval_end(self, state: TrainState) -> None:
        print(eval_line(state), flush=True)


def eval_line(state: TrainState) -> str:
    """One evaluation in a line, e.g.
    ``step 40/120  epoch 1/3  train/loss 0.91  val/loss 0.88  val/accuracy 0.67  best val/accuracy 0.67 (step 40)``.
    """
    train_loss = state.metrics.get("train/epoch_loss", math.nan)
    if not math.isfinite(train_loss) and state.loss is not None:  # mid-epoch: the latest batch's loss
        train_loss = float(state.loss)
    epoch = state.epoch + (1 if state.batch_in_epoch else 0)
    parts = [f"step {state.step}/{state.total_steps}", f"epoch {epoch}/{state.epochs}", f"train/loss {train_loss:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in state.metrics.items() if k.startswith("val/")]
    if state.monitor not in state.metrics or not state.monitor.startswith("val/"):
        parts.append(f"{state.monitor} {state.metrics.get(state.monitor, math.nan):.4f}")
    if state.best is not None:
        parts.append(f"best {state.monitor} {state.best:.4f} (step {state.best_step})")
    return "  ".join(parts)


class ProgressBar(Callback):
    """A rich progress bar with ETA and live loss and metrics, redrawn a few times a second."""

    def __init__(self, description: str = "train", refresh_seconds: float = 0.25):
        self.description = description
        self.refresh_seconds = refresh_seconds
        self._progress = None
        self._task = None
        self._last = 0.0

    def on_fit_start(self, state: TrainState) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            auto_refresh=False, transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=state.total_steps, completed=state.step, info="")

    def _info(self, state: TrainState) -> str:
        parts = [f"epoch {state.epoch + (1 if state.batch_in_epoch else 0)}/{state.epochs}"]
        if state.loss is not None:
            parts.append(f"loss {float(state.loss):.4f}")
        for k, v in state.metrics.items():
            if k.startswith("val/"):
                parts.append(f"{k} {v:.4f}")
        return "  ".join(parts)

    def on_step_end(self, state: TrainState) -> None:
        now = time.monotonic()
        if now - self._last >= self.refresh_seconds:
            self._last = now
            self._progress.update(self._task, completed=state.step, info=self._info(state))
            self._progress.refresh()

    def on_eval_end(self, state: TrainState) -> None:
        self._progress.update(self._task, completed=state.step, info=self._info(state))
        self._progress.refresh()

    def on_fit_end(self, state: TrainState) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.step, info=self._info(state))
            self._progress.refresh()
            self._progress.stop()
