"""Matplotlib figures: confusion matrix, ROC curves, predicted-vs-true scatter, training curves.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never through pyplot:
pyplot keeps global state and is not safe off the main thread, and these are drawn in the
background writer thread.
"""

from __future__ import annotations

import io

import numpy as np

MAX_ANNOTATED_CLASSES = 20  # beyond this, numbers in the cells are unreadable
MAX_SCATTER_POINTS = 5000


def new_figure(width: float, height: float, dpi: int = 100):
    """A Figure on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def to_rgb(fig) -> np.ndarray:
    """Render a figure to an (H, W, 3) uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def to_png(fig) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class ConfusionMatrixPlot:
    """A confusion-matrix figure built once and updated at each evaluation.

    Creating ticks and labels is a third of a matplotlib draw; an evaluation only changes the
    cell colours, the numbers and the title, so those are all that is updated.
    Rows are true classes, columns predictions; colour is the row fraction (recall), text the count.
    """

    def __init__(self, class_names: list[str], title: str = "confusion matrix"):
        k = len(class_names)
        self.k, self.title = k, title
        size = min(3.2 + 0.36 * k, 12)
        self.fig = new_figure(size, size)
        ax = self.fig.add_subplot()
        self.image = ax.imshow(np.zeros((k, k)), cmap="Blues", vmin=0, vmax=1)
        ticks = np.arange(k)
        rotate = 90 if k > 8 and max(map(len, class_names)) > 2 else 0
        ax.set_xticks(ticks, labels=class_names, rotation=rotate)
        ax.set_yticks(ticks, labels=class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        self.ax = ax
        self.cells = [[ax.text(j, i, "", ha="center", va="center", fontsize=8) for j in range(k)]
                      for i in range(k)] if k <= MAX_ANNOTATED_CLASSES else None
        self.fig.subplots_adjust(left=0.12, bottom=0.1, right=0.97, top=0.9)

    def figure(self, cm: np.ndarray):
        """The figure showing ``cm`` (k x k counts)."""
        cm = np.asarray(cm)
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        self.image.set_data(frac)
        if self.cells is not None:
            for i in range(self.k):
                for j in range(self.k):
                    cell = self.cells[i][j]
                    cell.set_text(str(int(cm[i, j])) if cm[i, j] else "")
                    cell.set_color("white" if frac[i, j] > 0.5 else "black")
        acc = np.trace(cm) / max(cm.sum(), 1)
        # No colour bar: it costs a third of the drawing time; the title says what colour means.
        self.ax.set_title(f"{self.title}\naccuracy {acc:.3f}, n={int(cm.sum())}; colour: fraction of true class",
                          fontsize=9)
        return self.fig


def confusion_matrix_figure(cm: np.ndarray, class_names: list[str], title: str = "confusion matrix"):
    """A one-off confusion-matrix figure (see ConfusionMatrixPlot)."""
    return ConfusionMatrixPlot(class_names, title).figure(cm)


class RocPlot:
    """One-vs-rest ROC curves (one curve for two classes), built once and updated per evaluation."""

    def __init__(self, class_names: list[str]):
        self.names = class_names
        k = len(class_names)
        self.classes = roc_classes(k)
        self.fig = new_figure(5.2, 4.6)
        ax = self.fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        self.lines = {c: ax.plot([], [], lw=1.2)[0] for c in self.classes}
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        self.ax = ax
        self.legend = None
        self.fig.subplots_adjust(left=0.13, bottom=0.12, right=0.97, top=0.92)

    def figure(self, y: np.ndarray, probs: np.ndarray):
        """(figure, macro AUC over the classes present in ``y``, or None when none is defined)."""
        curves = roc_curves(y, probs, self.classes)
        for c, line in self.lines.items():
            if c not in curves:
                line.set_data([], [])  # undefined without both positives and negatives
                line.set_label("_hidden")
                continue
            fpr, tpr, a = curves[c]
            line.set_data(fpr, tpr)
            line.set_label(f"{self.names[c]} ({a:.3f})")
        macro = _macro(curves)
        self.ax.set_title(f"ROC, one vs rest (macro AUC {macro:.3f})" if macro is not None else "ROC", fontsize=10)
        if self.legend is not None:
            self.legend.remove()
            self.legend = None
        if 0 < len(curves) <= 12:
            self.legend = self.ax.legend(fontsize=7, loc="lower right", title="class (AUC)", title_fontsize=7)
        return self.fig, macro


def roc_classes(k: int) -> list[int]:
    """The classes with a one-vs-rest ROC curve: the positive class of two, else every class."""
    return [1] if k == 2 else list(range(k))


def roc_curves(y: np.ndarray, probs: np.ndarray, classes: list[int]) -> dict[int, tuple]:
    """{class: (false positive rates, true positive rates, AUC)}, one vs rest, for each of `classes`
    with both positives and negatives in ``y`` (the curve is undefined otherwise)."""
    from sklearn.metrics import auc, roc_curve

    out = {}
    for c in classes:
        positive = y == c
        if positive.any() and not positive.all():
            fpr, tpr, _ = roc_curve(positive, probs[:, c])
            out[c] = (fpr, tpr, auc(fpr, tpr))
    return out


def macro_auc(y: np.ndarray, probs: np.ndarray) -> float | None:
    """The mean one-vs-rest ROC AUC of `RocPlot`'s curves, without drawing them; None when none is defined."""
    return _macro(roc_curves(y, probs, roc_classes(probs.shape[1])))


def _macro(curves: dict) -> float | None:
    return float(np.mean([a for _, _, a in curves.values()])) if curves else None


def roc_figure(y: np.ndarray, probs: np.ndarray, class_names: list[str]):
    """A one-off ROC figure and its macro AUC (see RocPlot)."""
    return RocPlot(class_names).figure(y, probs)


def scatter_figure(true: np.ndarray, pred: np.ndarray, title: str = "predicted vs true"):
    """Predicted against true values with the y = x line and R²."""
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if len(true) > MAX_SCATTER_POINTS:  # evenly spaced subset: deterministic and representative
        keep = np.linspace(0, len(true) - 1, MAX_SCATTER_POINTS).astype(int)
        true_s, pred_s = true[keep], pred[keep]
    else:
        true_s, pred_s = true, pred
    fig = new_figure(5, 4.6)
    ax = fig.add_subplot()
    ax.scatter(true_s, pred_s, s=8, alpha=0.5, edgecolors="none")
    lo = float(min(true.min(), pred.min())) if len(true) else 0.0
    hi = float(max(true.max(), pred.max())) if len(true) else 1.0
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    ss_res = float(((true - pred) ** 2).sum())
    ss_tot = float(((true - true.mean()) ** 2).sum()) if len(true) else 0.0
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"{title} (R² {r2:.3f}, n={len(true)})", fontsize=10)
    fig.subplots_adjust(left=0.14, bottom=0.12, right=0.97, top=0.92)
    return fig


def curves_figure(series: dict[str, tuple[list, list]], title: str, ylabel: str, log_y: bool = False):
    """Line plot of named (steps, values) series on one axis, for reports."""
    fig = new_figure(6, 3.6)
    ax = fig.add_subplot()
    for name, (steps, values) in series.items():
        marker = "o" if len(steps) <= 30 else None
        ax.plot(steps, values, label=name, lw=1.2, marker=marker, ms=3)
    if log_y and all(v > 0 for _, vals in series.values() for v in vals):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.subplots_adjust(left=0.12, bottom=0.14, right=0.97, top=0.9)
    return fig
