"""Data sets that need no download: scikit-learn's bundled sets and seeded synthetic generators."""

from __future__ import annotations

import numpy as np

from .base import RawDataset


def _sk(loader_name: str):
    from sklearn import datasets

    return getattr(datasets, loader_name)()


def load_digits() -> RawDataset:
    """8x8 handwritten digits (1,797 images), pixel values 0..16 scaled to [0, 1]."""
    d = _sk("load_digits")
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    return RawDataset(x, d.target.astype(np.int64), "classification", [str(c) for c in d.target_names])


def _table(loader_name: str, task: str) -> RawDataset:
    d = _sk(loader_name)
    x = np.asarray(d.data, dtype=np.float32)
    if task == "classification":
        return RawDataset(x, d.target.astype(np.int64), task, [str(c) for c in d.target_names], list(d.feature_names))
    return RawDataset(x, d.target.astype(np.float32), task, None, list(d.feature_names))


def load_iris() -> RawDataset:
    return _table("load_iris", "classification")


def load_wine() -> RawDataset:
    return _table("load_wine", "classification")


def load_breast_cancer() -> RawDataset:
    return _table("load_breast_cancer", "classification")


def load_diabetes() -> RawDataset:
    return _table("load_diabetes", "regression")


def make_classification(n_samples: int, n_features: int, n_classes: int, noise: float, seed: int) -> RawDataset:
    """Gaussian class clusters (scikit-learn's make_classification); `noise` is the label-flip fraction."""
    from sklearn.datasets import make_classification as sk_make

    informative = max(2, min(n_features, n_classes * 2))
    x, y = sk_make(
        n_samples=n_samples, n_features=n_features, n_informative=informative,
        n_redundant=0, n_classes=n_classes, flip_y=min(noise, 1.0), random_state=seed,
    )
    names = [f"class_{i}" for i in range(n_classes)]
    return RawDataset(x.astype(np.float32), y.astype(np.int64), "classification", names,
                      [f"x{i}" for i in range(n_features)])


def make_regression(n_samples: int, n_features: int, noise: float, seed: int) -> RawDataset:
    """A random linear target with Gaussian noise of std `noise` (scikit-learn's make_regression)."""
    from sklearn.datasets import make_regression as sk_make

    x, y = sk_make(n_samples=n_samples, n_features=n_features, noise=noise, random_state=seed)
    return RawDataset(x.astype(np.float32), y.astype(np.float32), "regression", None,
                      [f"x{i}" for i in range(n_features)])
