"""Per-task loss, predictions and metrics: classification and regression."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config import DataConfig
from ..data.batches import iter_batches
from ..data.bundle import DataMeta, Split
from ..errors import UserError
from .balance import check_sampler, class_weights
from .metrics import classification_metrics, regression_metrics
from ..models.modes import eval_mode

LOSSES = {"classification": ("cross_entropy", "bce", "hinge"), "regression": ("mse",)}


class Task:
    """What a model is trained for: turns outputs and targets into a loss and into metrics."""

    def __init__(self, meta: DataMeta, loss: str = "auto", label_smoothing: float = 0.0,
                 class_weights: torch.Tensor | None = None):
        self.meta = meta
        self.kind = meta.task
        allowed = LOSSES[self.kind]
        self.loss_name = allowed[0] if loss == "auto" else loss
        if self.loss_name not in allowed:
            raise UserError(f"train.loss {loss!r} does not fit {self.kind}; allowed: auto, {', '.join(allowed)}")
        self.label_smoothing = label_smoothing
        if class_weights is not None and self.loss_name == "bce":
            raise UserError("train.class_weights applies to the losses cross_entropy and hinge, not bce")
        self.class_weights = class_weights  # (C,) or None; the same weights in training and evaluation

    @property
    def monitor_default(self) -> tuple[str, str]:
        """The metric to pick the best checkpoint by, and whether higher is better.

        Validation loss, not accuracy: on small validation sets accuracy saturates early and ties,
        so "best accuracy" would keep an under-trained model.
        """
        return ("val/loss", "min")

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch. out: (B, C) logits or (B, 1); y: (B,)."""
        if self.loss_name == "cross_entropy":
            return F.cross_entropy(out, y, weight=self._weights(out), label_smoothing=self.label_smoothing)
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(out, F.one_hot(y, out.shape[-1]).to(out.dtype))
        if self.loss_name == "hinge":
            return F.multi_margin_loss(out, y, weight=self._weights(out))
        return F.mse_loss(out.squeeze(-1), y)

    def _weights(self, out: torch.Tensor) -> torch.Tensor | None:
        w = self.class_weights
        return None if w is None else w.to(device=out.device, dtype=out.dtype)

    def outputs(self, model: torch.nn.Module, split: Split, batch_size: int = 512) -> torch.Tensor:
        """Model outputs for a whole split, in eval mode, as float32 on the split's device."""
        with eval_mode(model):
            outs = [model(x).float() for x, _ in iter_batches(split, batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, self.meta.num_outputs)

    def metric_names(self, prefix: str) -> list[str]:
        """The names `quick_metrics` gives, e.g. for a train.monitor check before training."""
        names = ("loss", "accuracy", "f1_macro") if self.kind == "classification" else ("loss", "mse", "r2")
        return [f"{prefix}/{n}" for n in names]

    def quick_metrics(self, model: torch.nn.Module, split: Split, prefix: str) -> dict[str, float]:
        """The cheap metrics logged at each evaluation during training."""
        out = self.outputs(model, split)
        if len(split) == 0:
            return {}
        m = {f"{prefix}/loss": float(self.loss(out, split.y))}
        if self.kind == "classification":
            m[f"{prefix}/accuracy"] = float((out.argmax(1) == split.y).float().mean())
            m[f"{prefix}/f1_macro"] = macro_f1(out.argmax(1), split.y, out.shape[1])
        else:
            pred, true = self.to_target_units(out.squeeze(-1)), self.to_target_units(split.y)
            mse = float(((pred - true) ** 2).mean())
            m[f"{prefix}/mse"] = mse
            m[f"{prefix}/r2"] = 1.0 - mse / max(float(true.var(unbiased=False)), 1e-12)
        return m

    def to_target_units(self, y: torch.Tensor) -> torch.Tensor:
        """Undo the training-time target standardisation (regression)."""
        return y * self.meta.y_std + self.meta.y_mean

    def full_metrics(self, model: torch.nn.Module, split: Split) -> dict:
        """Every metric of the task on one split (what `zerotune eval` prints); only ``n``, 0, for an empty
        split (``data.test_fraction = 0``: no test split)."""
        if len(split) == 0:
            return {"n": 0}
        out = self.outputs(model, split)
        loss = float(self.loss(out, split.y))
        if self.kind == "classification":
            probs = torch.softmax(out, dim=1).cpu().numpy().astype(np.float64)
            m = classification_metrics(split.y.cpu().numpy(), probs, self.meta.class_names)
        else:
            m = regression_metrics(
                self.to_target_units(split.y).cpu().numpy(), self.to_target_units(out.squeeze(-1)).cpu().numpy()
            )
        return {"loss": loss, "n": len(split), **m}


def macro_f1(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """F1 averaged over all classes, a class never predicted nor present counting 0 (as `full_metrics`)."""
    tp = torch.bincount(y[pred == y], minlength=num_classes)
    both = torch.bincount(pred, minlength=num_classes) + torch.bincount(y, minlength=num_classes)
    return float((2 * tp / both.clamp(min=1)).mean())


def make_task(meta: DataMeta, train_cfg, data_cfg: DataConfig | None = None, train_y: torch.Tensor | None = None):
    """The task for a run's data: classification and regression here, language modelling in tasks/lm.py.

    ``train_y``, the training split's targets, is what ``train.class_weights = "balanced"`` counts.
    """
    weights = class_weights(train_cfg.class_weights, meta, train_y)
    check_sampler(train_cfg.sampler, meta)
    if meta.task == "lm":
        from .lm import LMTask

        data_cfg = data_cfg or DataConfig()  # the defaults, e.g. of data.eval_windows
        return LMTask(meta, train_cfg.loss, train_cfg.label_smoothing, eval_windows=data_cfg.eval_windows)
    return Task(meta, train_cfg.loss, train_cfg.label_smoothing, weights)
