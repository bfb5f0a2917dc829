"""A multilayer perceptron with a hand-written forward and backward pass (backpropagation).

Architecture: input → [Linear → activation] × len(hidden) → Linear → softmax, trained with
cross-entropy (Rumelhart, Hinton & Williams 1986, "Learning representations by
back-propagating errors"). Initialisation follows Glorot & Bengio 2010 ("xavier", for sigmoid
and tanh) or He et al. 2015 ("he", for ReLU).

Shapes, for a batch of m rows and layer l with fan-in n_{l-1} and fan-out n_l::

    W_l: (n_{l-1}, n_l)   b_l: (n_l,)
    z_l = a_{l-1} W_l + b_l          (m, n_l)
    a_l = f(z_l)                     (m, n_l);  a_0 = X
    P   = softmax(z_L)               (m, K)
    J   = −1/m Σ log P[i, y_i] + λ/2 Σ_l ‖W_l‖²

Backward pass::

    δ_L = (P − Y)/m                  softmax and cross-entropy together, exact and stable
    ∂J/∂W_l = a_{l-1}ᵀ δ_l + λ W_l   ∂J/∂b_l = Σ_i δ_l
    δ_{l-1} = f'(z_{l-1}) ⊙ (δ_l W_lᵀ)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .activations import HIDDEN, get_activation, log_softmax, softmax
from .data import as_float_matrix, as_target
from .logreg import one_hot
from .optim import GDConfig, GDHook, GDResult, Params, minimize

INITS = ("xavier", "he")


def default_init(activation: str) -> str:
    """He initialisation suits ReLU; Xavier suits the saturating sigmoid and tanh."""
    return "he" if activation == "relu" else "xavier"


def init_params(sizes: list[int], init: str = "he", seed: int = 0) -> Params:
    """Random weights and zero biases for layer sizes [n_0, n_1, ..., n_L].

    Args:
        sizes: input width, hidden widths, number of classes.
        init: "xavier" (uniform, Var = 2/(fan_in + fan_out)) or "he" (normal, Var = 2/fan_in).
        seed: random seed.

    Returns:
        ``{"W1": (n_0, n_1), "b1": (n_1,), ..., "WL": ..., "bL": ...}``.
    """
    if init not in INITS:
        raise UserError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    rng = np.random.default_rng(seed)
    params: Params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        if init == "xavier":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            params[f"W{layer}"] = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        else:
            params[f"W{layer}"] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out))
        params[f"b{layer}"] = np.zeros(fan_out)
    return params


def n_layers(params: Params) -> int:
    return sum(1 for k in params if k.startswith("W"))


def forward(params: Params, X: np.ndarray, activation: str = "relu"):
    """Forward pass.

    Args:
        params: weights from `init_params`.
        X: inputs (m, n_0).
        activation: hidden activation name.

    Returns:
        (logits z_L of shape (m, K), cache of (z_l, a_l) per layer for `backward`).
    """
    act = get_activation(activation)
    a, cache = X, [(None, X)]
    L = n_layers(params)
    for layer in range(1, L):
        z = a @ params[f"W{layer}"] + params[f"b{layer}"]
        a = act.forward(z)
        cache.append((z, a))
    logits = a @ params[f"W{L}"] + params[f"b{L}"]
    return logits, cache


def loss_and_grad(params: Params, X: np.ndarray, y: np.ndarray, activation: str = "relu",
                  l2: float = 0.0) -> tuple[float, Params]:
    """Cross-entropy loss with L2 and its gradient by backpropagation.

    Args:
        params: weights from `init_params`.
        X: inputs (m, n_0).
        y: class indices (m,).
        activation: hidden activation name.
        l2: λ, the L2 penalty on the weight matrices (not the biases).

    Returns:
        (J, gradients keyed like params).
    """
    act = get_activation(activation)
    m, L = X.shape[0], n_layers(params)
    logits, cache = forward(params, X, activation)
    penalty = 0.5 * l2 * sum(np.sum(params[f"W{layer}"] ** 2) for layer in range(1, L + 1))
    loss = -np.mean(log_softmax(logits)[np.arange(m), y]) + penalty
    delta = (softmax(logits) - one_hot(y, logits.shape[1])) / m  # (m, K)
    grads: Params = {}
    for layer in range(L, 0, -1):
        a_prev = cache[layer - 1][1]
        grads[f"W{layer}"] = a_prev.T @ delta + l2 * params[f"W{layer}"]
        grads[f"b{layer}"] = delta.sum(axis=0)
        if layer > 1:
            z_prev, _ = cache[layer - 1]
            delta = act.backward(z_prev, a_prev, delta @ params[f"W{layer}"].T)
    return float(loss), {k: grads[k] for k in params}


def accuracy(params: Params, X: np.ndarray, y: np.ndarray, activation: str = "relu") -> float:
    """Fraction of rows whose highest logit is the label."""
    return float(np.mean(forward(params, X, activation)[0].argmax(axis=1) == y))


@dataclass
class MLPResult:
    """A trained MLP.

    Attributes:
        params: weights and biases.
        gd: loss history and run statistics.
        sizes: layer widths [n_0, ..., n_L].
        activation: hidden activation.
        init: initialisation used.
    """

    params: Params
    gd: GDResult
    sizes: list[int]
    activation: str
    init: str

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def predict_proba(self, X) -> np.ndarray:
        return softmax(forward(self.params, as_float_matrix(X), self.activation)[0])

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def accuracy(self, X, y) -> float:
        X = as_float_matrix(X)
        y = as_target(y, X.shape[0], "classification")
        return accuracy(self.params, X, y, self.activation)


def fit_mlp(
    X,
    y,
    config: GDConfig | None = None,
    *,
    hidden: tuple[int, ...] | list[int] = (64,),
    activation: str = "relu",
    init: str | None = None,
    l2: float = 0.0,
    n_classes: int | None = None,
    callbacks: list[GDHook] | tuple[GDHook, ...] = (),
    metrics=None,
    **options,
) -> MLPResult:
    """Train an MLP classifier with hand-written backpropagation and gradient descent.

    Args:
        X: features (m, F).
        y: class indices 0..K-1, (m,).
        config: gradient-descent options; keyword `options` override it.
        hidden: widths of the hidden layers.
        activation: "relu", "sigmoid" or "tanh" between layers (the output is softmax).
        init: "xavier" or "he"; by default He for ReLU and Xavier otherwise.
        l2: λ >= 0, the L2 penalty on weights.
        n_classes: K; defaults to max(y) + 1.
        callbacks: hooks called during training.
        metrics: optional ``params -> dict`` evaluated every iteration (see `minimize`).
        **options: fields of `GDConfig` (the seed also seeds the initial weights).

    Returns:
        The trained network and its loss history.

    Raises:
        UserError: for bad inputs or options, or divergence.
    """
    X = as_float_matrix(X)
    y = as_target(y, X.shape[0], "classification")
    if activation not in HIDDEN:
        raise UserError(f"hidden activation must be one of {', '.join(HIDDEN)}, got {activation!r}")
    hidden = [int(h) for h in hidden]
    if any(h < 1 for h in hidden):
        raise UserError(f"hidden layer widths must be positive, got {hidden}")
    if not l2 >= 0:
        raise UserError(f"l2 must be >= 0, got {l2}")
    k = int(n_classes or y.max() + 1)
    if y.max() >= k:
        raise UserError(f"labels go up to {y.max()} but n_classes is {k}")
    config = dataclasses.replace(config or GDConfig(), **options)
    init = init or default_init(activation)
    sizes = [X.shape[1], *hidden, k]
    params = init_params(sizes, init, config.seed)

    def fn(p, Xb, yb):
        return loss_and_grad(p, Xb, yb, activation, l2)

    gd = minimize(fn, params, X, y, config, callbacks, metrics)
    return MLPResult(gd.params, gd, sizes, activation, init)
