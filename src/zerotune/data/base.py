"""Containers shared by every data source: raw arrays as loaded, and tensors ready to train on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawDataset:
    """Arrays exactly as a source provides them, before splitting and normalisation.

    Attributes:
        x: features, float32. Images are (N, C, H, W) with values in [0, 1]; tables are (N, F).
        y: targets. Classification: int64 class indices in [0, num_classes). Regression: float32 (N,).
        task: "classification" or "regression".
        class_names: one name per class index (classification only).
        feature_names: one name per column for tables, None for images.
        test: an official test split (x, y) when the source ships one (MNIST, CIFAR-10), else None.
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    test: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        return self.x.ndim == 4


def paths_of(value: str | list[str]) -> list[str]:
    """``data.path`` (one path or a list of paths) as a list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]
