"""Activation functions with hand-written derivatives: ReLU, sigmoid, tanh, softmax.

Each activation has ``forward(z) -> a`` and ``backward(z, a, grad_a) -> grad_z`` (the
vector-Jacobian product: given ∂L/∂a, return ∂L/∂z). `backward` receives both the input and the
output so each derivative can use whichever is cheaper (σ' = σ(1 − σ) needs only the output).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import UserError


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^(−z)), without overflow for large |z|."""
    return np.exp(-np.logaddexp(0.0, -z))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (m, K) logits; the row maximum is subtracted so exp cannot overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log softmax, computed as z − logsumexp(z) for stability."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _relu_backward(z, a, grad_a):
    return grad_a * (z > 0)


def _sigmoid_backward(z, a, grad_a):
    return grad_a * a * (1.0 - a)


def _tanh_backward(z, a, grad_a):
    return grad_a * (1.0 - a * a)


def _softmax_backward(z, a, grad_a):
    # Jacobian of softmax is diag(a) − a aᵀ per row, so J·g = a ⊙ (g − ⟨g, a⟩).
    return a * (grad_a - np.sum(grad_a * a, axis=1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """A named activation and its derivative."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


ACTIVATIONS = {
    "relu": Activation("relu", lambda z: np.maximum(z, 0.0), _relu_backward),
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_backward),
    "tanh": Activation("tanh", np.tanh, _tanh_backward),
    "softmax": Activation("softmax", softmax, _softmax_backward),
}

#: Activations allowed between hidden layers (softmax is the output layer's).
HIDDEN = ("relu", "sigmoid", "tanh")


def get_activation(name: str) -> Activation:
    """Look an activation up by name.

    Raises:
        UserError: for an unknown name.
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        choices = ", ".join(ACTIVATIONS)
        raise UserError(f"unknown activation {name!r}; choose one of {choices}") from None
