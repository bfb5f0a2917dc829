"""Summaries built in the background writer thread from host copies of what the model produced.

Each function takes plain arrays (already off the device) and returns ``(Summary, step)`` records
for :class:`zerotune.track.sink.EventSink`; none touches the model, so training can go on.
"""

from __future__ import annotations

import numpy as np
import torch

from . import figures, images, summaries, text


def histograms(tags: tuple[str, ...], packed: torch.Tensor, step: int) -> list:
    """Histogram records from stacked :func:`zerotune.track.stats.hist_stats` rows."""
    rows = packed.detach().cpu().double().numpy()
    out = []
    for tag, row in zip(tags, rows):
        s = summaries.histogram(tag, row)
        if s is not None:
            out.append((s, step))
    return out


def image_grid(tag: str, pictures: np.ndarray, captions: list[str], step: int, cols: int = 8,
               colors: list[str] | None = None) -> list:
    """One captioned grid image."""
    return [(summaries.image(tag, images.caption_grid(pictures, captions, cols, colors)), step)]


class ClassificationPlots:
    """The figures a classification run redraws at each evaluation, built on first use."""

    def __init__(self, class_names: list[str]):
        self.class_names = class_names
        self._cm = self._roc = None

    def confusion(self, cm: np.ndarray) -> np.ndarray:
        if self._cm is None:
            self._cm = figures.ConfusionMatrixPlot(self.class_names, "validation confusion matrix")
        return figures.to_rgb(self._cm.figure(cm))

    def roc(self, y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, float | None]:
        if self._roc is None:
            self._roc = figures.RocPlot(self.class_names)
        fig, macro = self._roc.figure(y, probs)
        return figures.to_rgb(fig), macro


def classification_views(probs: np.ndarray, y: np.ndarray, class_names: list[str], step: int, *,
                         figures_on: bool, pr_on: bool, worst: tuple | None, predictions_on: bool,
                         plots: ClassificationPlots | None = None, auc_on: bool = False) -> list:
    """Confusion matrix, ROC, PR curves, worst-misclassified grid and sample predictions.

    Args:
        probs: (N, C) class probabilities on the validation split.
        y: (N,) true classes.
        class_names: C names.
        step: the global step.
        figures_on: draw the confusion matrix and ROC figures.
        auc_on: write the macro ROC AUC scalar (due by the evaluation count, never skipped by the clock,
            so a resumed run has the same points as an uninterrupted one).
        pr_on: write one PR curve per class.
        worst: None, or (pictures (k, H, W, 3) in [0, 1], their indices into y) for the grid.
        predictions_on: write a text table of the first predictions.
        plots: figures kept from the previous evaluation (redrawing them is cheaper).
    """
    out = []
    pred = probs.argmax(axis=1)
    k = probs.shape[1]
    if figures_on:
        plots = plots or ClassificationPlots(class_names)
        cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
        out.append((summaries.image("val/confusion_matrix", plots.confusion(cm)), step))
        rgb, _ = plots.roc(y, probs)
        out.append((summaries.image("val/roc", rgb), step))
    macro = figures.macro_auc(y, probs) if auc_on else None
    if macro is not None:
        out.append((summaries.scalars([("val/roc_auc", macro)]), step))
    if pr_on:
        for c, name in enumerate(class_names):
            if (y == c).any():
                out.append((summaries.pr_curve(f"pr/{summaries.clean_tag(name)}", y == c, probs[:, c]), step))
    if worst is not None:
        pictures, idx = worst
        captions = [f"true {class_names[y[i]]}\npred {class_names[pred[i]]} {probs[i, pred[i]]:.0%}" for i in idx]
        colors = ["#c00000" if pred[i] != y[i] else "#006000" for i in idx]
        out.append((summaries.image("val/worst_misclassified",
                                    images.caption_grid(pictures, captions, 8, colors)), step))
    if predictions_on:
        rows = [[i, class_names[y[i]], class_names[pred[i]], f"{probs[i, pred[i]]:.3f}",
                 "yes" if pred[i] == y[i] else "**no**"] for i in range(min(len(y), 16))]
        out.append((summaries.text("val/predictions", text.predictions(rows, regression=False)), step))
    return out


def regression_views(pred: np.ndarray, true: np.ndarray, step: int, *, figures_on: bool,
                     predictions_on: bool) -> list:
    """Predicted-vs-true scatter and sample predictions, in the target's units."""
    out = []
    if figures_on:
        out.append((summaries.image("val/predicted_vs_true", figures.to_rgb(
            figures.scatter_figure(true, pred, "validation: predicted vs true"))), step))
    if predictions_on:
        rows = [[i, f"{true[i]:.4g}", f"{pred[i]:.4g}", f"{pred[i] - true[i]:+.4g}"] for i in range(min(len(true), 16))]
        out.append((summaries.text("val/predictions", text.predictions(rows, regression=True)), step))
    return out


def projector(run_dir, step: int, features: np.ndarray, metadata: list[list[str]], header: list[str],
              pictures: np.ndarray | None) -> list:
    """Write the projector files; returns no event records."""
    from .embeddings import thumbnails, write_projector

    label_img = thumbnails(pictures) if pictures is not None else None
    write_projector(run_dir, step, features, metadata, header, label_img)
    return []
