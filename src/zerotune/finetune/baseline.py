"""What the source model is worth on the target task before any fine-tuning.

Two numbers: the model as it stands (a new head is untrained, so that is chance level), and a
linear probe, logistic regression on the frozen features, which is what a frozen encoder with a
linear head can reach at best.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.bundle import DataBundle
from ..tasks.supervised import Task

PROBE_BATCH = 256


def before_metrics(model: torch.nn.Module, data: DataBundle, task: Task, device) -> dict[str, float]:
    """``{"val/loss": ..., "val/accuracy": ..., "test/...": ...}`` of the model before training."""
    model.to(device)
    out = {}
    for name in ("val", "test"):
        split = data.split(name)
        if len(split):
            out.update(task.quick_metrics(model, split.to(device), name))
    return out


@torch.no_grad()
def features_of(model: torch.nn.Module, x: torch.Tensor, device) -> np.ndarray:
    was = model.training
    model.eval()
    try:
        parts = [model.features(chunk.to(device)).float().reshape(len(chunk), -1).cpu() for chunk in x.split(PROBE_BATCH)]
    finally:
        model.train(was)
    return torch.cat(parts).numpy() if parts else np.zeros((0, 0), dtype=np.float32)


def linear_probe(model: torch.nn.Module, data: DataBundle, device, seed: int = 0) -> dict[str, float] | None:
    """Accuracy of logistic regression on the frozen features (classification only)."""
    if data.meta.task != "classification" or len(np.unique(data.train.y.numpy())) < 2:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = features_of(model, data.train.x, device)
    scaler = StandardScaler().fit(train)
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(scaler.transform(train), data.train.y.numpy())
    out = {}
    for name in ("val", "test"):
        split = data.split(name)
        if len(split):
            pred = clf.predict(scaler.transform(features_of(model, split.x, device)))
            out[f"{name}/accuracy"] = float((pred == split.y.numpy()).mean())
    return out
