"""Seeded splits, class selection and normalisation with statistics from the training split only."""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import RawDataset


def split_indices(y: np.ndarray, fractions: tuple[float, float], seed: int, stratify: bool):
    """Return (train, val, test) index arrays; test or val may be empty when their fraction is 0."""
    from sklearn.model_selection import train_test_split

    n = len(y)
    idx = np.arange(n)
    val_frac, test_frac = fractions

    def cut(pool, frac, salt):
        if frac <= 0:
            return pool, pool[:0]
        strat = y[pool] if stratify and _can_stratify(y[pool], frac) else None
        # scikit-learn takes seeds up to 2**32 - 1, data.split_seed's bound: the salted seed wraps around
        keep, held = train_test_split(pool, test_size=frac, random_state=(seed + salt) % 2**32, stratify=strat)
        return np.sort(keep), np.sort(held)

    rest, test = cut(idx, test_frac, 0)
    train, val = cut(rest, val_frac / (1 - test_frac) if test_frac < 1 else 0, 1)
    return train, val, test


def _can_stratify(y: np.ndarray, frac: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and frac * len(y) >= len(counts)


def check_classes(y: np.ndarray, names: list[str] | None, source: str, hint: str = "") -> None:
    """Refuse classification data with fewer than two classes among its labels: there is nothing to
    tell apart, and the metrics would only warn.

    Args:
        y: the class index of every example.
        names: the class names, by index (None: the indices name them).
        source: how the message names the data, e.g. ``"data set 'csv'"``.
        hint: what to check, added to the message.
    """
    present = np.unique(y)
    if len(present) < 2:
        shown = ", ".join(repr(names[int(c)] if names and int(c) < len(names) else str(int(c))) for c in present)
        raise UserError(f"{source} has {len(present)} class{'' if len(present) == 1 else 'es'}"
                        f"{f' ({shown})' if shown else ''}; classification needs at least 2" + (f" ({hint})" if hint else ""))


def select_classes(raw: RawDataset, classes: list[int]) -> RawDataset:
    """Keep only the listed classes, relabelled 0..k-1 in the order given."""
    if raw.task != "classification":
        raise UserError("data.classes applies to classification data only")
    n = len(raw.class_names or []) or int(raw.y.max()) + 1
    bad = [c for c in classes if not 0 <= c < n]
    if bad or len(set(classes)) != len(classes):
        raise UserError(f"data.classes must be distinct class indices in 0..{n - 1}, got {classes}")
    lut = np.full(n, -1, dtype=np.int64)
    lut[classes] = np.arange(len(classes))

    def pick(x, y):
        keep = lut[y] >= 0
        return x[keep], lut[y[keep]]

    x, y = pick(raw.x, raw.y)
    test = pick(*raw.test) if raw.test is not None else None
    names = [raw.class_names[c] for c in classes] if raw.class_names else [str(c) for c in classes]
    return RawDataset(x, y, raw.task, names, raw.feature_names, test, raw.extra)


def limit_per_class(idx: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Keep at most `per_class` indices of each class, chosen with a seeded generator."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        keep.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(keep))


def keep_class_fraction(idx: np.ndarray, y: np.ndarray, fractions: dict[int, float], n_classes: int,
                        seed: int) -> np.ndarray:
    """Keep a seeded `fractions[c]` of the indices of each listed class c (at least one), all of the others."""
    bad = sorted(c for c in fractions if not 0 <= c < n_classes)
    if bad:
        raise UserError(f"data.class_fraction names classes {bad}; allowed: class indices 0..{n_classes - 1}")
    rng = np.random.default_rng(seed)
    keep = [idx[~np.isin(y[idx], list(fractions))]]
    for c, fraction in sorted(fractions.items()):
        members = idx[y[idx] == c]
        keep.append(rng.permutation(members)[:max(1, round(fraction * len(members)))])
    return np.sort(np.concatenate(keep))


def fold_indices(pool: np.ndarray, y: np.ndarray, folds: int, fold: int, seed: int, stratify: bool):
    """Fold `fold` of a seeded k-fold split of the indices in `pool`: (train, val) index arrays.

    Stratified (scikit-learn's StratifiedKFold) for classification, plain KFold for regression.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if stratify:
        smallest = int(np.unique(y[pool], return_counts=True)[1].min())
        if smallest < folds:
            raise UserError(f"{folds} folds need at least {folds} examples of each class; the smallest class has "
                            f"{smallest} in train+val; allowed: 2..{smallest} folds")
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        if len(pool) < folds:
            raise UserError(f"{folds} folds need at least {folds} examples; train+val has {len(pool)}")
        splitter = KFold(folds, shuffle=True, random_state=seed)
    train, val = list(splitter.split(pool, y[pool]))[fold]
    return pool[train], pool[val]


def input_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel for images (N, C, H, W), per feature for tables (N, F)."""
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    std[std < 1e-8] = 1.0  # constant inputs stay as they are instead of dividing by zero
    return mean.astype(np.float32), std.astype(np.float32)


def apply_stats(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    return ((x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)
