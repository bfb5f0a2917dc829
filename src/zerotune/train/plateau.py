"""The `plateau` schedule: lower the learning rate when the monitored metric stops improving.

Unlike the other schedules it is not a function of the step: it reads the monitored metric at each
evaluation, like Keras's ``ReduceLROnPlateau`` and torch's ``lr_scheduler.ReduceLROnPlateau``
(relative threshold). Its whole state is three numbers, saved in the `last` checkpoint, so a resumed
run lowers the rate exactly when an uninterrupted one would.
"""

from __future__ import annotations

import math


class Plateau:
    """Multiplies the rate by `factor` after `patience` evaluations without improvement.

    Args:
        patience: evaluations without improvement that are tolerated; the next one lowers the rate.
        factor: multiplier applied to the rate at each reduction (0 < factor < 1).
        threshold: relative improvement that counts: below best x (1 - threshold) when minimising,
            above best x (1 + threshold) when maximising.
        min_ratio: the rate never falls below this fraction of its base rate.
        mode: "min" or "max", as the monitored metric should move.
    """

    def __init__(self, patience: int, factor: float, threshold: float, min_ratio: float, mode: str):
        self.patience, self.factor, self.threshold, self.min_ratio, self.mode = (
            patience, factor, threshold, min_ratio, mode)
        self.best: float | None = None
        self.bad = 0  # evaluations since the last improvement
        self.multiplier = 1.0  # the factor on every group's base rate

    def update(self, value: float | None) -> None:
        """Take the metric of one evaluation (None or NaN when not measured: counts as no improvement)."""
        if value is not None and not math.isnan(value) and self._improves(value):
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad > self.patience:
            self.multiplier = max(self.multiplier * self.factor, self.min_ratio)
            self.bad = 0

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        margin = self.threshold * abs(self.best)
        return value < self.best - margin if self.mode == "min" else value > self.best + margin

    def state_dict(self) -> dict:
        """JSON-ready state for the checkpoint."""
        return {"best": self.best, "bad": self.bad, "multiplier": self.multiplier}

    def load_state_dict(self, d: dict) -> None:
        self.best, self.bad, self.multiplier = d["best"], d["bad"], d["multiplier"]
