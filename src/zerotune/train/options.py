"""What a run sets beyond its TrainConfig, given once to `Trainer` or `fit`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import LogConfig, OptimConfig, ScheduleConfig
from .callbacks import Callback
from .runner import Runner


@dataclass
class TrainOptions:
    """Every field has a default: plain training of all the model's parameters in one process.

    Attributes:
        optim: the optimizer, penalties and clipping.
        schedule: the learning-rate schedule (default: a constant rate).
        log: how often the gradient norm is measured and the throughput is timed.
        callbacks: called at each event, in order.
        augment: optional callable (x, generator) -> x applied to training batches.
        mix: optional callable (x, y, generator) -> (x, y_a, y_b, lam) applied after `augment`
            (mixup, cutmix: `data/mixing.py`); the loss is then `tasks/mixing.py`'s `mixed_loss`.
        groups: optimizer parameter groups (default: the model's trainable parameters).
        freeze: optional schedule with ``apply(model, epoch)`` that sets which parameters train in
            each epoch; it must be a pure function of the epoch (``epoch=None``: every parameter
            that ever trains), so a resumed run has exactly the frozen set it stopped with.
        phase: a context factory ``phase(name)`` around each phase of a step (`zerotune profile`).
        runner: how steps are synchronised and checkpoints saved (`train/runner.py`; default: one
            process). Several processes: `distributed.strategy.make_runner`.
    """

    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    log: LogConfig = field(default_factory=LogConfig)
    callbacks: Sequence[Callback] = ()
    augment: Callable | None = None
    mix: Callable | None = None
    groups: list[dict] | None = None
    freeze: Any = None
    phase: Callable | None = None
    runner: Runner | None = None
