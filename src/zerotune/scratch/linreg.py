"""Linear regression by least-squares gradient descent, and its closed-form solution.

Model and loss, for m rows x_i with targets y_i::

    ŷ_i = x_i · w + b
    J   = s/m · Σ (ŷ_i − y_i)²          s = 1/2 (the usual convention) or 1 (the mean squared error)
    ∂J/∂w = 2s/m · Xᵀ (ŷ − y)
    ∂J/∂b = 2s/m · Σ (ŷ_i − y_i)

The closed form minimises the same sum of squares: θ* = argmin ‖Aθ − y‖² with A = [X, 1]
(the normal equations AᵀA θ = Aᵀy, solved stably by least squares).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .data import as_float_matrix, as_target
from .optim import DivergenceError, GDConfig, GDHook, GDResult, Params, minimize


def predict(params: Params, X: np.ndarray) -> np.ndarray:
    """ŷ = X w + b, shape (m,)."""
    return X @ params["w"] + params["b"]


def loss_and_grad(params: Params, X: np.ndarray, y: np.ndarray, scale=0.5) -> tuple[float, Params]:
    """Least-squares loss and its analytic gradient.

    Works on float arrays and on object arrays of `fractions.Fraction`, so the worked example can
    be checked exactly.

    Args:
        params: ``{"w": (F,), "b": ()}``.
        X: features (m, F).
        y: targets (m,).
        scale: s in J = s/m · Σ r²; 0.5 gives 1/(2m), 1 gives the mean squared error.

    Returns:
        (J, {"w": ∂J/∂w, "b": ∂J/∂b}).
    """
    m = X.shape[0]
    r = predict(params, X) - y  # (m,) residuals ŷ − y
    loss = scale * (r @ r) / m
    return loss, {"w": 2 * scale * (X.T @ r) / m, "b": 2 * scale * r.sum() / m}


def loss(params: Params, X: np.ndarray, y: np.ndarray, scale=0.5) -> float:
    """Least-squares loss J only."""
    r = predict(params, X) - y
    return float(scale * (r @ r) / X.shape[0])


def closed_form(X, y, solver: str = "lstsq") -> Params:
    """Exact minimiser of the least-squares loss (independent of the loss scale).

    Args:
        X: features (m, F).
        y: targets (m,).
        solver: "lstsq" (SVD-based, stable when X is ill-conditioned) or "normal" (solve the
            normal equations AᵀA θ = Aᵀy directly; squares the condition number).

    Returns:
        ``{"w": (F,), "b": ()}``.
    """
    X = as_float_matrix(X)
    y = as_target(y, X.shape[0], "regression")
    A = np.hstack([X, np.ones((X.shape[0], 1))])  # (m, F+1): bias as a column of ones
    if solver == "lstsq":
        theta = np.linalg.lstsq(A, y, rcond=None)[0]
    elif solver == "normal":
        theta = np.linalg.solve(A.T @ A, A.T @ y)
    else:
        raise UserError(f"solver must be 'lstsq' or 'normal', got {solver!r}")
    return {"w": theta[:-1], "b": np.asarray(theta[-1])}


def hessian_eigenvalues(X: np.ndarray, scale=0.5) -> np.ndarray:
    """Eigenvalues (ascending) of the Hessian 2s/m · AᵀA of J, with A = [X, 1].

    J is quadratic, so the Hessian is constant: its largest eigenvalue L bounds the stable step
    size (lr < 2/L) and L/λ_min is the condition number that sets the speed of convergence.
    """
    A = np.hstack([X, np.ones((X.shape[0], 1))])
    return np.linalg.eigvalsh(2 * scale / X.shape[0] * (A.T @ A))


def flatten(params: Params) -> np.ndarray:
    """All parameters as one vector [w..., b]."""
    return np.concatenate([np.ravel(params["w"]), np.ravel(params["b"])])


def relative_error(params: Params, reference: Params) -> float:
    """‖θ − θ_ref‖ / ‖θ_ref‖ over all parameters (weights and bias)."""
    a, b = flatten(params), flatten(reference)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


@dataclass
class LinRegResult:
    """A fitted linear regression.

    Attributes:
        params: ``{"w": (F,), "b": ()}``.
        gd: loss history and run statistics.
        loss_scale: s of the loss J = s/m · Σ r² that was minimised.
    """

    params: Params
    gd: GDResult
    loss_scale: float

    @property
    def w(self) -> np.ndarray:
        return self.params["w"]

    @property
    def b(self) -> float:
        return float(self.params["b"])

    def predict(self, X) -> np.ndarray:
        """Predictions for new rows."""
        return predict(self.params, as_float_matrix(X))

    def loss(self, X, y) -> float:
        """Loss J on the given rows, with the loss scale used in training."""
        X = as_float_matrix(X)
        return loss(self.params, X, as_target(y, X.shape[0], "regression"), self.loss_scale)


def fit_linreg(
    X,
    y,
    config: GDConfig | None = None,
    *,
    loss_scale: float = 0.5,
    init: Params | None = None,
    callbacks: list[GDHook] | tuple[GDHook, ...] = (),
    **options,
) -> LinRegResult:
    """Fit linear regression by gradient descent on J = s/m · Σ (ŷ − y)².

    Args:
        X: features (m, F), or (m,) for a single feature.
        y: targets (m,).
        config: gradient-descent options; keyword `options` (lr=..., iters=...) override it.
        loss_scale: s; 0.5 for 1/(2m) (default), 1.0 for 1/m.
        init: starting ``{"w": ..., "b": ...}``; zeros when omitted.
        callbacks: hooks called during training (e.g. the TensorBoard logger).
        **options: fields of `GDConfig`.

    Returns:
        The fitted parameters and the loss history.

    Raises:
        UserError: for non-numeric or mismatched inputs, NaNs, bad options, or divergence.

    Example:
        >>> r = fit_linreg([2, 4, 6], [3, 6, 9], lr=0.1, iters=1, loss_scale=1.0,
        ...                init={"w": [1.0], "b": 0.0})
        >>> round(float(r.w[0]), 4), round(r.b, 4)
        (2.8667, 0.4)
    """
    X = as_float_matrix(X)
    y = as_target(y, X.shape[0], "regression")
    if not loss_scale > 0:
        raise UserError(f"loss_scale must be positive, got {loss_scale}")
    config = dataclasses.replace(config or GDConfig(), **options)
    if init is None:
        params = {"w": np.zeros(X.shape[1]), "b": np.asarray(0.0)}
    else:
        w0 = np.asarray(init["w"], dtype=np.float64).ravel()
        if w0.size != X.shape[1]:
            raise UserError(f"init['w'] has {w0.size} values but X has {X.shape[1]} features")
        params = {"w": w0, "b": np.asarray(init["b"], dtype=np.float64).reshape(())}

    def fn(p, Xb, yb):
        return loss_and_grad(p, Xb, yb, loss_scale)

    try:
        gd = minimize(fn, params, X, y, config, callbacks)
    except DivergenceError as e:
        # For least squares the largest safe step is known exactly: 2/L, L = λ_max(Hessian).
        limit = 2.0 / hessian_eigenvalues(X, loss_scale)[-1]
        raise DivergenceError(f"{e}; for this data and loss, plain gradient descent is stable "
                              f"only below lr = 2/L = {limit:.3g}") from None
    return LinRegResult(gd.params, gd, loss_scale)
