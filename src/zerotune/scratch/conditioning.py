"""Why standardise: condition numbers and the speed of gradient descent on least squares.

For J(θ) = s/m ‖Aθ − y‖² with A = [X, 1], the Hessian is H = 2s/m · AᵀA. Gradient descent with
the largest safe constant step 1/L (L = λ_max(H)) shrinks the error along the flattest direction
by a factor (1 − 1/κ) per iteration, where κ = λ_max/λ_min = cond(A)². Columns on very different
scales (age in years next to cholesterol in mg/dL) make κ huge, so that direction barely moves;
standardised columns make κ small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import linreg
from .optim import GDConfig, minimize


def design_matrix(X: np.ndarray) -> np.ndarray:
    """A = [X, 1]: the features with a column of ones for the bias, (m, F+1)."""
    return np.hstack([X, np.ones((X.shape[0], 1))])


def condition_number(X: np.ndarray) -> float:
    """cond(A) = σ_max/σ_min of the design matrix (the Hessian's is its square)."""
    return float(np.linalg.cond(design_matrix(X)))


hessian_eigenvalues = linreg.hessian_eigenvalues


def safe_lr(X: np.ndarray, scale: float = 0.5) -> float:
    """1/L, the step size that is guaranteed to decrease the loss (2/L is the stability limit)."""
    return float(1.0 / hessian_eigenvalues(X, scale)[-1])


@dataclass
class ScalingRun:
    """Gradient descent on one version of the features (raw or standardised).

    Attributes:
        label: "raw" or "standardized".
        cond: condition number of the design matrix.
        kappa: condition number of the Hessian, cond².
        lr: the step size used, 1/L.
        excess: relative excess loss (J − J*)/J* after each iteration, J* the closed-form loss.
        iters_to_target: first iteration with excess ≤ target, or None if never reached.
    """

    label: str
    cond: float
    kappa: float
    lr: float
    excess: list[float]
    iters_to_target: int | None


def scaling_run(label: str, X: np.ndarray, y: np.ndarray, iters: int, scale: float = 0.5,
                target: float = 1e-6) -> ScalingRun:
    """Plain gradient descent (step 1/L, no momentum) on X, measured against the closed form.

    Args:
        label: name of this version of the features.
        X: features, (m, F).
        y: targets, (m,).
        iters: iterations to run.
        scale: loss scale s.
        target: relative excess loss that counts as converged.
    """
    optimum = linreg.loss(linreg.closed_form(X, y), X, y, scale)
    lr = safe_lr(X, scale)
    params = {"w": np.zeros(X.shape[1]), "b": np.asarray(0.0)}
    gd = minimize(lambda p, Xb, yb: linreg.loss_and_grad(p, Xb, yb, scale), params, X, y,
                  GDConfig(lr=lr, iters=iters))
    excess = [(j - optimum) / max(optimum, 1e-300) for j in gd.losses]
    reached = next((i for i, e in enumerate(excess) if e <= target), None)
    eig = hessian_eigenvalues(X, scale)
    return ScalingRun(label, condition_number(X), float(eig[-1] / max(eig[0], 1e-300)), lr,
                      excess, reached)


def compare_scaling(X_raw: np.ndarray, X_std: np.ndarray, y: np.ndarray, iters: int,
                    scale: float = 0.5, target: float = 1e-6) -> list[ScalingRun]:
    """Run `scaling_run` on raw and on standardised features with the same budget."""
    return [scaling_run("standardized", X_std, y, iters, scale, target),
            scaling_run("raw", X_raw, y, iters, scale, target)]
