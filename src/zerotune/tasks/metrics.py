"""Evaluation metrics, computed with scikit-learn on NumPy arrays."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro and per-class precision/recall/F1, confusion matrix and ROC-AUC.

    Args:
        y_true: (N,) class indices.
        probs: (N, C) class probabilities.
        class_names: C names.

    Returns:
        A JSON-ready dict. ROC-AUC is one-vs-rest macro for more than two classes, and None when a
        class is missing from `y_true` (it is undefined then).
    """
    from sklearn import metrics as skm

    labels = np.arange(len(class_names))
    y_pred = probs.argmax(axis=1)
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision_macro": float(p.mean()),
        "recall_macro": float(r.mean()),
        "f1_macro": float(f.mean()),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "roc_auc": _roc_auc(y_true, probs, labels),
    }
    return out


def _roc_auc(y_true, probs, labels) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < len(labels):
        return None
    if len(labels) == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    p = probs / probs.sum(axis=1, keepdims=True)  # guard against float32 rounding in the simplex
    return float(roc_auc_score(y_true, p, multi_class="ovr", average="macro", labels=labels))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MSE, RMSE, MAE and R² in the target's original units."""
    from sklearn import metrics as skm

    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {
        "mse": mse,
        "rmse": mse ** 0.5,
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }
