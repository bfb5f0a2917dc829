"""Class imbalance: loss weights per class (``train.class_weights``) and the balanced sampler's checks."""

from __future__ import annotations

import numpy as np
import torch

from ..data.bundle import DataMeta
from ..errors import UserError


def class_weights(setting: str | list[float] | None, meta: DataMeta, y_train: torch.Tensor | None) -> torch.Tensor | None:
    """The loss weight of each class, or None for an unweighted loss.

    Args:
        setting: ``train.class_weights``: None, "balanced" or one positive weight per class.
        meta: the data's metadata (task, number of classes).
        y_train: the training split's class indices ("balanced" counts them).

    Returns:
        A float32 tensor of one weight per class. "balanced" is scikit-learn's definition,
        n_samples / (n_classes * count_c); a class absent from the training split gets weight 1.
    """
    if setting is None:
        return None
    if meta.task != "classification":
        raise UserError(f"train.class_weights applies to classification, not {meta.task}")
    k = meta.num_classes
    if setting == "balanced":
        if y_train is None or len(y_train) == 0:
            raise UserError("train.class_weights 'balanced' needs a training split to count the classes in")
        from sklearn.utils.class_weight import compute_class_weight

        y = y_train.cpu().numpy()
        present = np.unique(y)
        weights = np.ones(k)
        weights[present] = compute_class_weight("balanced", classes=present, y=y)
        return torch.tensor(weights, dtype=torch.float32)
    if len(setting) != k:
        raise UserError(f"train.class_weights has {len(setting)} weights but the data has {k} classes; "
                        f"allowed: 'balanced' or one positive weight per class")
    return torch.tensor(setting, dtype=torch.float32)


def check_sampler(sampler: str, meta: DataMeta) -> None:
    """``train.sampler = "balanced"`` counts classes: classification data only."""
    if sampler == "balanced" and meta.task != "classification":
        raise UserError(f"train.sampler 'balanced' applies to classification, not {meta.task}")
