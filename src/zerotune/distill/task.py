"""Classification whose training batches carry the teacher's logits: the loss of `loss.distill_loss`."""

from __future__ import annotations

import torch

from ..data.bundle import Split
from ..tasks.supervised import Task
from .loss import distill_loss
from .targets import SoftTargets
from .teacher import Teacher

AGREEMENT = "teacher_agreement"  # metric name: top-1 agreement of student and teacher


class DistillTask(Task):
    """The student's task: distillation loss on training batches, the plain task everywhere else.

    Validation loss and metrics stay those of the plain task, so they compare with a run trained
    from scratch; ``<split>/teacher_agreement`` is added to them.

    Args:
        base: the task the data implies (its loss is the hard term).
        teacher: the teacher.
        temperature: T.
        alpha: weight of the soft term.
    """

    def __init__(self, base: Task, teacher: Teacher, temperature: float, alpha: float):
        super().__init__(base.meta, base.loss_name, base.label_smoothing)
        self.teacher, self.temperature, self.alpha = teacher, temperature, alpha
        self._sums: torch.Tensor | None = None  # (soft, hard, batches) since the last `take_terms`
        self._memo: tuple[torch.Tensor, torch.Tensor] | None = None  # (inputs, teacher predictions) of one split

    def loss(self, out: torch.Tensor, y) -> torch.Tensor:
        """The distillation loss for a batch of `SoftTargets`; the plain task's loss for plain labels."""
        if not isinstance(y, SoftTargets):
            return super().loss(out, y)
        terms = distill_loss(out, y.teacher, super().loss(out, y.labels), self.temperature, self.alpha)
        parts = torch.stack([terms.soft, terms.hard, torch.ones_like(terms.soft)])
        self._sums = parts if self._sums is None else self._sums + parts  # summed on the device: no sync
        return terms.total

    def take_terms(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Mean soft (T² · KL) and hard terms of the batches since the last call, as 0-d tensors (read
        off the training thread by the event sink); None if there were none."""
        if self._sums is None:
            return None
        s, self._sums = self._sums, None
        return s[0] / s[2], s[1] / s[2]

    def metric_names(self, prefix: str) -> list[str]:
        return [*super().metric_names(prefix), f"{prefix}/{AGREEMENT}"]

    def quick_metrics(self, model: torch.nn.Module, split: Split, prefix: str) -> dict[str, float]:
        m = super().quick_metrics(model, split, prefix)
        if len(split):
            m[f"{prefix}/{AGREEMENT}"] = self.agreement(self.outputs(model, split), split)
        return m

    def full_metrics(self, model: torch.nn.Module, split: Split) -> dict:
        m = super().full_metrics(model, split)
        if len(split):
            m[AGREEMENT] = self.agreement(self.outputs(model, split), split)
        return m

    def agreement(self, out: torch.Tensor, split: Split) -> float:
        """Fraction of `split` where the student's top class (from `out`) is the teacher's."""
        return float((out.argmax(1) == self.teacher_predictions(split)).float().mean())

    def teacher_predictions(self, split: Split) -> torch.Tensor:
        """The teacher's top class for each example of `split` (kept for the split last asked about)."""
        if self._memo is None or self._memo[0] is not split.x:
            self._memo = (split.x, self.teacher.logits(split.x).argmax(1))
        return self._memo[1]
