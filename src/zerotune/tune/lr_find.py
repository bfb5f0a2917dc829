"""The learning-rate range test of Smith (2015), "Cyclical Learning Rates for Training Neural Networks",
in the style of fastai's ``lr_find``.

A fresh model, built from the recipe exactly as ``train`` builds it, takes one optimizer step per
rate while the rate grows exponentially from `start` to `end`. The loss, smoothed by an exponential
moving average, falls while the rate is useful and blows up once it is too high; the sweep stops
there. The suggested rate is the lower of two readings of the curve: the rate where the smoothed
loss falls fastest (steepest descent) and a tenth of the rate at its minimum. Either alone fails on
some curves: the minimum/10 lands too high when the loss stops falling on a flat shelf long before
it blows up (a regularised CNN over a hundred steps), and the steepest point can sit early on a
noisy curve. Of the two errors, too low a rate only learns slower, too high a rate diverges, so the
lower reading is taken.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

SMOOTHING = 0.98  # exponential moving average of the loss, debiased (fastai's value)
BLOW_UP = 4.0  # the sweep stops once the smoothed loss exceeds this many times its best
MIN_STEPS, MAX_STEPS = 5, 1000


@dataclass
class LrFindResult:
    """One range test: the rates tried, the losses, the suggestion and where it was written."""

    lrs: list[float]
    losses: list[float]  # smoothed
    raw_losses: list[float]
    suggestion: float  # min(steepest_lr, min_loss_lr / 10)
    min_loss_lr: float
    steepest_lr: float
    stopped_early: bool
    run_dir: Path


def check_range(start: float, end: float, steps: int) -> None:
    """Raise a UserError unless 0 < start < end and MIN_STEPS <= steps <= MAX_STEPS."""
    if not (start > 0 and end > 0 and math.isfinite(start) and math.isfinite(end)):
        raise UserError(f"--start and --end must be positive rates, got {start:g} and {end:g}")
    if start >= end:
        raise UserError(f"--start ({start:g}) must be below --end ({end:g})")
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise UserError(f"--steps must be between {MIN_STEPS} and {MAX_STEPS}, got {steps}")


def rate_at(i: int, start: float, end: float, steps: int) -> float:
    """The exponential schedule: `start` at step 0, `end` at step ``steps - 1``."""
    return start * (end / start) ** (i / max(steps - 1, 1))


def lr_find(config, start: float = 1e-7, end: float = 10.0, steps: int = 100,
            runs_dir: str | Path | None = None, name: str | None = None) -> LrFindResult:
    """Run the range test on a fresh model built from `config` and write its curve.

    Args:
        config: the Config that ``train`` would use.
        start, end: the first and last rate of the sweep.
        steps: optimizer steps (one rate each) unless the loss blows up first.
        runs_dir: where the test's own run directory goes (default: ``config.log.dir``).
        name: that directory's name (default: ``lr-find-<data>-<model>-<time>``).

    Returns:
        The curve, the suggested rate and the directory holding the events and ``lr_find.png``.
    """
    from ..compute.threads import torch_threads
    from ..pipeline.train import default_run_prefix, prepare, write_run_files
    from ..run.files import create_unique_run_dir, new_run_name
    from ..run.lock import run_lock

    check_range(start, end, steps)
    with torch_threads(config.train.threads, "train.threads"), contextlib.ExitStack() as lock:
        run = prepare(config)  # every check of bad input before the directory is created
        root = Path(runs_dir) if runs_dir is not None else Path(config.log.dir)
        run_dir = create_unique_run_dir(root, name or new_run_name("lr-find-" + default_run_prefix(config)))
        lock.enter_context(run_lock(run_dir))  # from its creation, as a new run's directory
        write_run_files(run, run_dir)  # what was tested, so that `zerotune runs` lists its data and model
        lrs, raw, smooth, stopped = _sweep(run, start, end, steps)
        result = _result(lrs, raw, smooth, stopped, run_dir)
        write_curve(result)
    return result


def _sweep(run, start: float, end: float, steps: int):
    """One optimizer step per rate; stops when the smoothed loss blows up or is not finite."""
    import torch

    from ..train.optim import build_optimizer, set_lr

    c, model, device = run.config, run.model.to(run.device), run.device
    model.train()
    opt = build_optimizer(model, c.optim, run.groups)
    train = run.data.train.to(device)
    gen = torch.Generator(device=device).manual_seed(c.train.seed + 1)
    lrs, raw, smooth, avg, best = [], [], [], 0.0, math.inf
    batches, b, epoch = train.epoch_batches(c.train.seed, 0, c.train.batch_size), 0, 0
    for i in range(steps):
        if b == len(batches):
            epoch, b = epoch + 1, 0
            batches = train.epoch_batches(c.train.seed, epoch, c.train.batch_size)
        x, y = batches[b]
        b += 1
        lr = rate_at(i, start, end, steps)
        set_lr(opt, lr / c.optim.lr)  # a fine-tune's groups keep their ratios to the base rate
        x = run.augment(x, gen) if run.augment is not None else x
        opt.zero_grad(set_to_none=True)
        loss = run.task.loss(model(x), y)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        avg = SMOOTHING * avg + (1 - SMOOTHING) * value
        smoothed = avg / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr), raw.append(value), smooth.append(smoothed)
        best = min(best, smoothed)
        if not math.isfinite(smoothed) or smoothed > BLOW_UP * best:
            return lrs, raw, smooth, True
    return lrs, raw, smooth, False


def _result(lrs, raw, smooth, stopped: bool, run_dir: Path) -> LrFindResult:
    finite = [i for i, v in enumerate(smooth) if math.isfinite(v)]
    if len(finite) < 2:
        raise UserError("the loss was not finite from the first steps: lower --start")
    low = min(finite, key=lambda i: smooth[i])
    steepest = lrs[_steepest(lrs, smooth, low)]
    return LrFindResult(lrs, smooth, raw, min(steepest, lrs[low] / 10), lrs[low], steepest, stopped, run_dir)


def _steepest(lrs, smooth, low: int) -> int:
    """The step, up to the minimum, where the smoothed loss falls fastest against log(lr)."""
    if low < 1:
        return 0
    slopes = [(smooth[i + 1] - smooth[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(low)]
    return min(range(low), key=lambda i: slopes[i])


def write_curve(result: LrFindResult) -> None:
    """The curve to TensorBoard (``lr_find/*`` by step) and to ``lr_find.png`` in the run directory."""
    from ..run.atomic import atomic_write_bytes
    from ..run.files import RunDir
    from ..track.figures import to_png, to_rgb
    from ..track.sink import EventSink

    fig = lr_find_figure(result)
    with EventSink(result.run_dir, record_memory=False) as sink:
        for step, (lr, raw, smooth) in enumerate(zip(result.lrs, result.raw_losses, result.losses)):
            sink.add_scalar("lr_find/lr", lr, step)
            sink.add_scalar("lr_find/loss", raw, step)
            sink.add_scalar("lr_find/smoothed_loss", smooth, step)
        sink.add_scalar("lr_find/suggestion", result.suggestion, 0)
        sink.add_image("lr_find/curve", to_rgb(fig), 0)
    atomic_write_bytes(RunDir(result.run_dir).lr_find_plot, to_png(fig))


def lr_find_figure(result: LrFindResult):
    """The smoothed loss against the rate (log axis), the suggestion marked."""
    from ..track.figures import new_figure

    fig = new_figure(6, 3.6)
    ax = fig.add_subplot()
    ax.plot(result.lrs, result.losses, lw=1.2, label="smoothed loss")
    ax.set_xscale("log")
    top = min(max(result.losses), 2 * result.losses[0]) if math.isfinite(result.losses[0]) else None
    if top is not None and math.isfinite(top) and top > min(result.losses):
        ax.set_ylim(top=top)
    ax.axvline(result.suggestion, color="C1", ls="--", lw=1, label=f"suggested {result.suggestion:.2g}")
    ax.axvline(result.min_loss_lr, color="C2", ls=":", lw=1, label=f"minimum {result.min_loss_lr:.2g}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.12, bottom=0.14, right=0.97, top=0.9)
    return fig
