"""From a DataConfig to a DataBundle: load, select classes, split, normalise, convert to tensors."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .base import RawDataset
from .bundle import DataBundle, DataMeta, Split
from .preprocess import (apply_stats, check_classes, fold_indices, input_stats, keep_class_fraction, limit_per_class,
                         select_classes, split_indices)
from .sources import load_raw


def build_data(cfg) -> DataBundle:
    """Build the train/val/test splits described by ``cfg`` (a DataConfig).

    Normalisation statistics come from the training split only and are kept in the metadata, so
    evaluation and serving apply exactly the same transform.
    """
    raw = load_raw(cfg)
    _check_raw(raw, cfg.name)
    if cfg.classes is not None:
        raw = select_classes(raw, cfg.classes)
    classify = raw.task == "classification"
    if classify:
        hint = (f"data.classes = {cfg.classes}" if cfg.classes is not None
                else "is data.target the right column?" if cfg.name == "csv" else "")
        check_classes(raw.y, raw.class_names, f"data set {cfg.name!r}", hint)

    train_idx, val_idx, x_test, y_test = _split(raw, cfg, classify)
    train_idx = _thin_training_classes(train_idx, raw, cfg, classify)
    if len(train_idx) == 0:
        raise UserError(f"data set {cfg.name!r} leaves no training examples after splitting")

    x_train, y_train = raw.x[train_idx], raw.y[train_idx]
    x_val, y_val = raw.x[val_idx], raw.y[val_idx]

    mean = std = None
    if cfg.normalize == "standard":
        mean, std = input_stats(x_train)
        x_train, x_val, x_test = (apply_stats(a, mean, std) for a in (x_train, x_val, x_test))

    y_mean, y_std = 0.0, 1.0
    if not classify and cfg.normalize_target:
        y_mean, y_std = float(y_train.mean()), float(y_train.std() or 1.0)

    def to_split(x, y) -> Split:
        yt = torch.from_numpy(np.ascontiguousarray(y))
        yt = yt.long() if classify else ((yt.float() - y_mean) / y_std)
        return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), yt)

    meta = DataMeta(
        source=cfg.name,
        task=raw.task,
        input_shape=list(raw.x.shape[1:]),
        num_classes=len(raw.class_names) if classify else 0,
        class_names=raw.class_names,
        feature_names=raw.feature_names,
        x_mean=None if mean is None else mean.tolist(),
        x_std=None if std is None else std.tolist(),
        y_mean=y_mean,
        y_std=y_std,
        sizes={"train": len(y_train), "val": len(y_val), "test": len(y_test)},
    )
    return DataBundle(to_split(x_train, y_train), to_split(x_val, y_val), to_split(x_test, y_test), meta)


def _split(raw: RawDataset, cfg, classify: bool):
    """Train and val indices into ``raw``, and the test arrays.

    With ``cfg.cv_folds`` set, train and val are the folds of everything the test split leaves (the
    official test split, or the same ``test_fraction`` cut as without folds): the test stays held out.
    """
    folds, fractions = cfg.cv_folds, (0.0 if cfg.cv_folds else cfg.val_fraction, cfg.test_fraction)
    if raw.test is not None:  # keep the official test split; val comes out of train
        train_idx, val_idx, _ = split_indices(raw.y, (fractions[0], 0.0), cfg.split_seed, classify)
        x_test, y_test = raw.test
    else:
        train_idx, val_idx, test_idx = split_indices(raw.y, fractions, cfg.split_seed, classify)
        x_test, y_test = raw.x[test_idx], raw.y[test_idx]
    if folds:
        train_idx, val_idx = fold_indices(train_idx, raw.y, folds, cfg.cv_fold or 0, cfg.split_seed, classify)
    return train_idx, val_idx, x_test, y_test


def _thin_training_classes(train_idx: np.ndarray, raw: RawDataset, cfg, classify: bool) -> np.ndarray:
    """``data.train_per_class`` and ``data.class_fraction``: fewer training examples of some classes."""
    for option in ("train_per_class", "class_fraction"):
        if getattr(cfg, option) is not None and not classify:
            raise UserError(f"data.{option} applies to classification data only")
    if cfg.train_per_class is not None:
        train_idx = limit_per_class(train_idx, raw.y, cfg.train_per_class, cfg.split_seed)
    if cfg.class_fraction:
        train_idx = keep_class_fraction(train_idx, raw.y, cfg.class_fraction, len(raw.class_names), cfg.split_seed)
    return train_idx


def _check_raw(raw: RawDataset, name: str) -> None:
    if len(raw.x) != len(raw.y):
        raise UserError(f"data set {name!r}: {len(raw.x)} inputs but {len(raw.y)} targets")
    if len(raw.x) < 3:
        raise UserError(f"data set {name!r} has {len(raw.x)} examples; at least 3 are needed")
    if not np.isfinite(raw.x).all():
        raise UserError(f"data set {name!r} has NaN or infinite input values")
    if raw.task == "classification" and not raw.class_names:
        raw.class_names = [str(i) for i in range(int(raw.y.max()) + 1)]


def normalize_inputs(x: torch.Tensor, meta: DataMeta) -> torch.Tensor:
    """Apply a run's saved input normalisation to raw inputs (for eval on new data and serving)."""
    if meta.x_mean is None:
        return x
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    mean = torch.tensor(meta.x_mean, dtype=x.dtype, device=x.device).reshape(shape)
    std = torch.tensor(meta.x_std, dtype=x.dtype, device=x.device).reshape(shape)
    return (x - mean) / std


def check_foldable(name: str) -> None:
    """Cross-validation folds are cut here, in memory: text and corpora are tokenised elsewhere and have none.

    Raises:
        UserError: the data set `name` is text or a corpus.
    """
    if name in ("text", "corpus"):
        raise UserError(f"zerotune cv splits in-memory data sets (images, tables); data.name {name!r} is not one")
