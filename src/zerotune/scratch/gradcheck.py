"""Check hand-written gradients against central finite differences and PyTorch autograd.

Central differences approximate each partial derivative as
``(J(θ + h·e_i) − J(θ − h·e_i)) / (2h)``, with error O(h²); in float64, h = 1e-6 leaves a
relative error around 1e-9, far below the 1e-6 threshold. Autograd computes the exact gradient of
an independent PyTorch implementation written with PyTorch's own operations (``cross_entropy``,
``softmax``, ``relu``...), so it agrees with a correct hand-written gradient to ~1e-15.

The relative error is measured norm-wise, ‖a − b‖ / max(‖a‖ + ‖b‖, tiny): element-wise ratios
blow up for components that are (nearly) zero.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .optim import Params

Loss = Callable[[Params], float]


def rel_error(a, b) -> float:
    """Norm-wise relative error between two arrays (0 when both are zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def numerical_grad(loss: Loss, params: Params, h: float = 1e-6) -> Params:
    """Gradient of ``loss`` by central finite differences, one coordinate at a time.

    Args:
        loss: ``params -> J``.
        params: point at which to differentiate (float64 arrays; left unchanged).
        h: step size.

    Returns:
        Arrays shaped like params.
    """
    point = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    grads = {}
    for name, value in point.items():
        g = np.zeros_like(value)
        flat, gflat = value.reshape(-1), g.reshape(-1)  # views: writing to flat moves the point
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            up = loss(point)
            flat[i] = old - h
            down = loss(point)
            flat[i] = old
            gflat[i] = (up - down) / (2 * h)
        grads[name] = g
    return grads


def autograd_grads(torch_loss: Callable, params: Params) -> Params:
    """Gradient of a PyTorch loss by autograd, at the same float64 parameters.

    Args:
        torch_loss: ``{name: torch.Tensor} -> scalar tensor``.
        params: NumPy parameters.

    Returns:
        NumPy arrays shaped like params.
    """
    import torch

    tparams = {k: torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True)
               for k, v in params.items()}
    torch_loss(tparams).backward()
    return {k: t.grad.numpy().copy() for k, t in tparams.items()}


def compare(analytic: Params, reference: Params) -> dict[str, float]:
    """Relative error per parameter between two gradient dicts."""
    return {k: rel_error(analytic[k], reference[k]) for k in analytic}


def check_numerical(loss_and_grad: Callable[[Params], tuple[float, Params]], params: Params,
                    h: float = 1e-6) -> dict[str, float]:
    """Relative error of a hand-written gradient against central differences, per parameter."""
    _, analytic = loss_and_grad(params)
    return compare(analytic, numerical_grad(lambda p: float(loss_and_grad(p)[0]), params, h))


def check_autograd(loss_and_grad: Callable[[Params], tuple[float, Params]], torch_loss: Callable,
                   params: Params) -> dict[str, float]:
    """Relative error of a hand-written gradient against PyTorch autograd, per parameter."""
    _, analytic = loss_and_grad(params)
    return compare(analytic, autograd_grads(torch_loss, params))


# Independent PyTorch implementations of the same losses, for `check_autograd`.


def torch_linreg_loss(X: np.ndarray, y: np.ndarray, scale: float = 0.5) -> Callable:
    """J = scale · mean((Xw + b − y)²) in PyTorch."""
    import torch

    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    return lambda p: scale * torch.nn.functional.mse_loss(Xt @ p["w"] + p["b"], yt)


def torch_binary_logreg_loss(X: np.ndarray, y: np.ndarray, l2: float = 0.0) -> Callable:
    """Binary cross-entropy on logits plus λ/2 ‖w‖² in PyTorch."""
    import torch

    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return lambda p: bce(Xt @ p["w"] + p["b"], yt) + 0.5 * l2 * (p["w"] ** 2).sum()


def torch_softmax_logreg_loss(X: np.ndarray, y: np.ndarray, l2: float = 0.0) -> Callable:
    """Multinomial cross-entropy plus λ/2 ‖W‖² in PyTorch."""
    import torch

    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.long)
    ce = torch.nn.functional.cross_entropy
    return lambda p: ce(Xt @ p["W"] + p["b"], yt) + 0.5 * l2 * (p["W"] ** 2).sum()


def torch_activation(name: str) -> Callable:
    """The PyTorch function matching one of our activations."""
    import torch

    return {
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda z: torch.softmax(z, dim=1),
    }[name]


def torch_mlp_loss(X: np.ndarray, y: np.ndarray, activation: str = "relu",
                   l2: float = 0.0) -> Callable:
    """The MLP's cross-entropy plus λ/2 Σ‖W_l‖² in PyTorch."""
    import torch

    Xt, yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(y, dtype=torch.long)
    f = torch_activation(activation)

    def loss(p):
        L = sum(1 for k in p if k.startswith("W"))
        a = Xt
        for layer in range(1, L):
            a = f(a @ p[f"W{layer}"] + p[f"b{layer}"])
        logits = a @ p[f"W{L}"] + p[f"b{L}"]
        penalty = sum((p[f"W{layer}"] ** 2).sum() for layer in range(1, L + 1))
        return torch.nn.functional.cross_entropy(logits, yt) + 0.5 * l2 * penalty

    return loss


def activation_probe(name: str, upstream: np.ndarray) -> Callable[[Params], tuple[float, Params]]:
    """Turn one activation into a scalar loss L(z) = Σ f(z) ⊙ g, with g a fixed upstream gradient.

    Then ∂L/∂z is exactly the activation's vector-Jacobian product ``backward(z, f(z), g)``, so
    the activation's derivative can be checked like any other gradient (params = ``{"z": ...}``).
    """
    from .activations import get_activation

    act = get_activation(name)

    def fn(p):
        z = p["z"]
        a = act.forward(z)
        return float(np.sum(a * upstream)), {"z": act.backward(z, a, upstream)}

    return fn


def torch_activation_probe(name: str, upstream: np.ndarray) -> Callable:
    """PyTorch counterpart of `activation_probe`."""
    import torch

    g, f = torch.as_tensor(upstream, dtype=torch.float64), torch_activation(name)
    return lambda p: (f(p["z"]) * g).sum()
