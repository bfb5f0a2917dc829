"""Logistic regression, binary (sigmoid) and multinomial (softmax), with cross-entropy and L2.

Binary, y ∈ {0, 1}, p = σ(Xw + b)::

    J = −1/m Σ [y log p + (1 − y) log(1 − p)] + λ/2 ‖w‖²
    ∂J/∂w = Xᵀ(p − y)/m + λw        ∂J/∂b = Σ(p − y)/m

Softmax, K classes, P = softmax(XW + b), Y one-hot::

    J = −1/m Σ log P[i, y_i] + λ/2 ‖W‖²
    ∂J/∂W = Xᵀ(P − Y)/m + λW        ∂J/∂b = Σ_i (P − Y)_i / m

The bias is not penalised, as in scikit-learn; its ``LogisticRegression(C=...)`` minimises the
same objective when C = 1/(λ·m).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .activations import log_softmax, sigmoid, softmax
from .data import as_float_matrix, as_target
from .optim import GDConfig, GDHook, GDResult, Params, minimize


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    """(m,) class indices -> (m, k) one-hot float matrix."""
    out = np.zeros((y.shape[0], k))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


def binary_loss_and_grad(params: Params, X: np.ndarray, y: np.ndarray, l2: float = 0.0):
    """Binary cross-entropy with L2 and its gradient.

    Args:
        params: ``{"w": (F,), "b": ()}``.
        X: features (m, F).
        y: labels in {0, 1}, (m,).
        l2: λ, the L2 penalty on w.

    Returns:
        (J, {"w": ∂J/∂w, "b": ∂J/∂b}).
    """
    m = X.shape[0]
    z = X @ params["w"] + params["b"]  # (m,) logits
    # −[y log σ(z) + (1−y) log(1−σ(z))] = log(1 + e^z) − y z, written with logaddexp for stability.
    loss = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * np.sum(params["w"] ** 2)
    d = (sigmoid(z) - y) / m  # (m,) ∂J/∂z
    return float(loss), {"w": X.T @ d + l2 * params["w"], "b": np.asarray(d.sum())}


def softmax_loss_and_grad(params: Params, X: np.ndarray, y: np.ndarray, l2: float = 0.0):
    """Multinomial cross-entropy with L2 and its gradient.

    Args:
        params: ``{"W": (F, K), "b": (K,)}``.
        X: features (m, F).
        y: class indices in [0, K), (m,).
        l2: λ, the L2 penalty on W.

    Returns:
        (J, {"W": ∂J/∂W, "b": ∂J/∂b}).
    """
    m, k = X.shape[0], params["W"].shape[1]
    z = X @ params["W"] + params["b"]  # (m, K) logits
    loss = -np.mean(log_softmax(z)[np.arange(m), y]) + 0.5 * l2 * np.sum(params["W"] ** 2)
    d = (softmax(z) - one_hot(y, k)) / m  # (m, K) ∂J/∂z
    return float(loss), {"W": X.T @ d + l2 * params["W"], "b": d.sum(axis=0)}


def predict_proba(params: Params, X: np.ndarray) -> np.ndarray:
    """Class probabilities, (m, K) (K = 2 for the binary model)."""
    if "w" in params:
        p = sigmoid(X @ params["w"] + params["b"])
        return np.stack([1.0 - p, p], axis=1)
    return softmax(X @ params["W"] + params["b"])


def accuracy(params: Params, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose most probable class is the label."""
    return float(np.mean(predict_proba(params, X).argmax(axis=1) == y))


@dataclass
class LogRegResult:
    """A fitted logistic regression.

    Attributes:
        params: ``{"w", "b"}`` (binary) or ``{"W", "b"}`` (softmax).
        gd: loss history and run statistics.
        n_classes: number of classes K.
        l2: the L2 penalty λ used.
    """

    params: Params
    gd: GDResult
    n_classes: int
    l2: float

    @property
    def binary(self) -> bool:
        return "w" in self.params

    def predict_proba(self, X) -> np.ndarray:
        return predict_proba(self.params, as_float_matrix(X))

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def accuracy(self, X, y) -> float:
        X = as_float_matrix(X)
        return accuracy(self.params, X, as_target(y, X.shape[0], "classification"))


def fit_logreg(
    X,
    y,
    config: GDConfig | None = None,
    *,
    l2: float = 0.0,
    n_classes: int | None = None,
    callbacks: list[GDHook] | tuple[GDHook, ...] = (),
    metrics=None,
    **options,
) -> LogRegResult:
    """Fit logistic regression by gradient descent, starting from zero weights.

    Two classes give the binary (sigmoid) model, more give the softmax model.

    Args:
        X: features (m, F).
        y: class indices 0..K-1, (m,).
        config: gradient-descent options; keyword `options` override it.
        l2: λ >= 0, the L2 penalty λ/2 ‖w‖².
        n_classes: K; defaults to max(y) + 1.
        callbacks: hooks called during training.
        metrics: optional ``params -> dict`` evaluated every iteration (see `minimize`).
        **options: fields of `GDConfig`.

    Returns:
        The fitted parameters and the loss history.

    Raises:
        UserError: for bad inputs or options, or divergence.
    """
    X = as_float_matrix(X)
    y = as_target(y, X.shape[0], "classification")
    if not l2 >= 0:
        raise UserError(f"l2 must be >= 0, got {l2}")
    k = int(n_classes or y.max() + 1)
    if y.max() >= k:
        raise UserError(f"labels go up to {y.max()} but n_classes is {k}")
    config = dataclasses.replace(config or GDConfig(), **options)
    f = X.shape[1]
    if k == 2:
        params = {"w": np.zeros(f), "b": np.asarray(0.0)}
        base = binary_loss_and_grad
    else:
        params = {"W": np.zeros((f, k)), "b": np.zeros(k)}
        base = softmax_loss_and_grad

    def fn(p, Xb, yb):
        return base(p, Xb, yb, l2)

    gd = minimize(fn, params, X, y, config, callbacks, metrics)
    return LogRegResult(gd.params, gd, k, l2)


def sklearn_reference(X_train, y_train, X_test, y_test, l2: float) -> dict[str, float]:
    """Fit scikit-learn's LogisticRegression on the same objective and report its accuracy.

    Args:
        X_train, y_train: the training rows (already standardised if ours were).
        X_test, y_test: held-out rows.
        l2: our λ; mapped to scikit-learn's C = 1/(λ·m), or no penalty when λ = 0.

    Returns:
        ``{"train_accuracy", "test_accuracy", "C"}`` of scikit-learn's model.
    """
    from sklearn.linear_model import LogisticRegression

    c = float("inf") if l2 == 0 else 1.0 / (l2 * X_train.shape[0])
    clf = LogisticRegression(C=c, max_iter=10_000, tol=1e-8).fit(X_train, y_train)
    return {
        "train_accuracy": float(clf.score(X_train, y_train)),
        "test_accuracy": float(clf.score(X_test, y_test)),
        "C": c,
    }
