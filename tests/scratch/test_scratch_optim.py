"""The gradient-descent driver on a tiny quadratic, and divergence handling."""

import numpy as np
import pytest

from zerotune.errors import UserError
from zerotune.scratch.optim import DivergenceError, GDConfig, minimize


def quadratic(p, X, y):
    # J = 1/2 Σ a_i θ_i² (data ignored): minimum 0 at θ = 0, curvatures a = [1, 10].
    a = np.array([1.0, 10.0])
    return 0.5 * float(np.sum(a * p["t"] ** 2)), {"t": a * p["t"]}


X = np.zeros((4, 1))
Y = np.zeros(4)


def test_converges_and_counts():
    r = minimize(quadratic, {"t": np.array([1.0, 1.0])}, X, Y,
                 GDConfig(lr=0.1, iters=1000, tol=1e-8))
    assert r.converged and r.steps == r.iterations == len(r.losses) - 1
    assert r.grad_norms[-1] <= 1e-8 * r.grad_norms[0]
    np.testing.assert_allclose(r.params["t"], 0.0, atol=1e-7)


def test_does_not_modify_the_starting_params():
    start = {"t": np.array([1.0, 1.0])}
    minimize(quadratic, start, X, Y, GDConfig(lr=0.1, iters=5))
    assert start["t"].tolist() == [1.0, 1.0]


def test_exact_momentum_update():
    # v1 = -lr g0, θ1 = θ0 + v1; v2 = μ v1 - lr g1, θ2 = θ1 + v2.
    r = minimize(quadratic, {"t": np.array([1.0, 0.0])}, X, Y,
                 GDConfig(lr=0.5, momentum=0.5, iters=2))
    t1 = 1.0 - 0.5 * 1.0
    t2 = t1 + (0.5 * (-0.5) - 0.5 * t1)
    assert r.params["t"][0] == pytest.approx(t2)


def test_minibatch_steps_per_iteration():
    r = minimize(quadratic, {"t": np.array([1.0, 1.0])}, np.zeros((10, 1)), np.zeros(10),
                 GDConfig(lr=0.01, iters=3, method="minibatch", batch_size=4))
    assert r.steps == 3 * 3  # batches of 4, 4, 2


@pytest.mark.parametrize("lr", [0.25, 1e3])
def test_divergence_is_a_user_error_with_a_hint(lr):
    # curvature 10 → stable only for lr < 0.2
    with pytest.raises(DivergenceError, match="try a smaller one") as e:
        minimize(quadratic, {"t": np.array([1.0, 1.0])}, X, Y, GDConfig(lr=lr, iters=100_000))
    assert isinstance(e.value, UserError)


def test_overflow_does_not_warn(recwarn):
    with pytest.raises(DivergenceError):
        minimize(quadratic, {"t": np.array([1.0, 1.0])}, X, Y, GDConfig(lr=1e150, iters=100))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("field,value,message", [
    ("lr", 0.0, "learning rate"), ("lr", float("nan"), "learning rate"), ("iters", -1, "iters"),
    ("batch_size", 0, "batch_size"), ("decay", -1.0, "decay"), ("tol", -1.0, "tol"),
])
def test_invalid_options(field, value, message):
    with pytest.raises(UserError, match=message):
        GDConfig(**{field: value}).validate()
