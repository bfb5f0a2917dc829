"""Figures rendered to RGB arrays (matplotlib, Agg backend) for TensorBoard images.

Each function takes plain arrays and returns an (H, W, 3) uint8 image; nothing here writes files.
"""

from __future__ import annotations

import numpy as np


def _figure(width: float = 6.0, height: float = 4.5):
    # The Agg canvas renders off-screen, so this works on machines without a display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _to_array(fig) -> np.ndarray:
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def loss_contour(
    x: np.ndarray,
    y: np.ndarray,
    path: np.ndarray,
    optimum: tuple[float, float],
    scale: float = 0.5,
    feature: str = "x",
) -> np.ndarray:
    """Contours of J(w, b) for one feature, with the gradient-descent path drawn over them.

    Args:
        x: the single feature, (m,).
        y: targets, (m,).
        path: (n, 2) array of (w, b) after each iteration, starting point first.
        optimum: closed-form (w*, b*).
        scale: s in J = s/m Σ (w x + b − y)².
        feature: name of the feature, for the axis label.

    Returns:
        RGB image, (H, W, 3) uint8.
    """
    path = np.asarray(path, dtype=np.float64)
    pts = np.vstack([path, np.asarray(optimum, dtype=np.float64)[None, :]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum((hi - lo) * 0.15, 1e-3 * np.maximum(np.abs(hi), 1.0))
    ws = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 200)
    bs = np.linspace(lo[1] - pad[1], hi[1] + pad[1], 200)
    Wg, Bg = np.meshgrid(ws, bs)  # (200, 200) each
    # J on the grid from the sufficient statistics of x and y: no (grid × m) array is needed.
    m = x.shape[0]
    sxx, sx, sxy, sy, syy = x @ x, x.sum(), x @ y, y.sum(), y @ y
    J = scale / m * (Wg**2 * sxx + 2 * Wg * Bg * sx + m * Bg**2 - 2 * Wg * sxy - 2 * Bg * sy + syy)
    j_min = max(float(J.min()), 1e-12)
    levels = np.geomspace(j_min * 1.001, float(J.max()), 25)

    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    cs = ax.contour(Wg, Bg, J, levels=levels, cmap="viridis", linewidths=0.8)
    fig.colorbar(cs, ax=ax, label="loss J")
    ax.plot(path[:, 0], path[:, 1], "-o", color="tab:red", markersize=2, linewidth=1,
            label=f"gradient descent ({len(path) - 1} iterations)")
    ax.plot(*path[0], "s", color="black", label="start")
    ax.plot(*optimum, "*", color="gold", markersize=14, markeredgecolor="black",
            label="closed form")
    ax.set_xlabel(f"w ({feature})")
    ax.set_ylabel("b (bias)")
    ax.set_title("Loss contours and the path of gradient descent")
    ax.legend(loc="best", fontsize=8)
    return _to_array(fig)


def loss_curves(curves: dict[str, list[float]], ylabel: str, title: str) -> np.ndarray:
    """Several loss curves on one log-scaled plot (e.g. raw vs standardised features).

    Args:
        curves: label -> values per iteration (non-positive values are clipped for the log axis).
        ylabel: y axis label.
        title: plot title.

    Returns:
        RGB image, (H, W, 3) uint8.
    """
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    for label, values in curves.items():
        v = np.maximum(np.asarray(values, dtype=np.float64), 1e-16)
        ax.plot(np.arange(len(v)), v, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _to_array(fig)
