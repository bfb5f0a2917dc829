"""Every hand-written gradient against central differences and PyTorch autograd (float64)."""

import numpy as np
import pytest

from zerotune.scratch import gradcheck as gc
from zerotune.scratch import linreg, logreg, mlp

TOL = 1e-6
rng = np.random.default_rng(42)
X = rng.normal(size=(9, 5))
Y_REG = rng.normal(size=9) * 3 + 1
Y_BIN = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1])
Y_MULTI = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1])


def assert_small(errors: dict[str, float]):
    assert errors, "no parameters checked"
    for name, err in errors.items():
        assert err < TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_linreg(scale):
    params = {"w": rng.normal(size=5), "b": np.asarray(0.3)}
    fn = lambda p: linreg.loss_and_grad(p, X, Y_REG, scale)  # noqa: E731
    assert_small(gc.check_numerical(fn, params))
    assert_small(gc.check_autograd(fn, gc.torch_linreg_loss(X, Y_REG, scale), params))


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_binary_logreg(l2):
    params = {"w": rng.normal(size=5), "b": np.asarray(-0.2)}
    fn = lambda p: logreg.binary_loss_and_grad(p, X, Y_BIN, l2)  # noqa: E731
    assert_small(gc.check_numerical(fn, params))
    assert_small(gc.check_autograd(fn, gc.torch_binary_logreg_loss(X, Y_BIN, l2), params))


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_softmax_logreg(l2):
    params = {"W": rng.normal(size=(5, 4)), "b": rng.normal(size=4)}
    fn = lambda p: logreg.softmax_loss_and_grad(p, X, Y_MULTI, l2)  # noqa: E731
    assert_small(gc.check_numerical(fn, params))
    assert_small(gc.check_autograd(fn, gc.torch_softmax_logreg_loss(X, Y_MULTI, l2), params))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("init", ["xavier", "he"])
@pytest.mark.parametrize("hidden", [[6], [6, 4]])
def test_mlp(activation, init, hidden):
    params = mlp.init_params([5, *hidden, 4], init, seed=3)
    for k in params:  # non-zero biases so their gradients are exercised in general position
        if k.startswith("b"):
            params[k] = rng.normal(size=params[k].shape) * 0.1
    fn = lambda p: mlp.loss_and_grad(p, X, Y_MULTI, activation, 0.05)  # noqa: E731
    assert_small(gc.check_numerical(fn, params))
    assert_small(gc.check_autograd(fn, gc.torch_mlp_loss(X, Y_MULTI, activation, 0.05), params))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_derivatives(name):
    z = rng.normal(size=(6, 4))
    upstream = rng.normal(size=(6, 4))
    params = {"z": z}
    assert_small(gc.check_numerical(gc.activation_probe(name, upstream), params))
    assert_small(gc.check_autograd(gc.activation_probe(name, upstream),
                                   gc.torch_activation_probe(name, upstream), params))


def test_a_wrong_gradient_is_caught():
    params = {"w": rng.normal(size=5), "b": np.asarray(0.3)}

    def wrong(p):  # forgets the factor 2 of the derivative of the square
        J, g = linreg.loss_and_grad(p, X, Y_REG, 1.0)
        return J, {"w": g["w"] / 2, "b": g["b"]}

    assert gc.check_numerical(wrong, params)["w"] > 0.1
    assert gc.check_autograd(wrong, gc.torch_linreg_loss(X, Y_REG, 1.0), params)["w"] > 0.1


def test_rel_error():
    assert gc.rel_error([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert gc.rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert gc.rel_error([1.0], [-1.0]) == pytest.approx(1.0)


def test_numerical_grad_leaves_params_unchanged():
    params = {"w": np.array([1.0, 2.0])}
    before = params["w"].copy()
    g = gc.numerical_grad(lambda p: float(np.sum(p["w"] ** 3)), params)
    np.testing.assert_allclose(g["w"], 3 * before**2, rtol=1e-8)
    np.testing.assert_array_equal(params["w"], before)
