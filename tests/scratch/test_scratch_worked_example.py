"""The worked example of docs/scratch.md, reproduced exactly.

x = [2, 4, 6], y = [3, 6, 9], θ = 1, b = 0, learning rate 0.1, J = (1/m) Σ (y − (θx + b))².
"""

from fractions import Fraction

import numpy as np
import pytest

from zerotune.scratch import GDHook, fit_linreg, linreg
from zerotune.scratch.optim import DivergenceError

X = [2, 4, 6]
Y = [3, 6, 9]


def test_one_step_exact_in_fractions():
    Xf = np.array([[Fraction(v)] for v in X], dtype=object)
    yf = np.array([Fraction(v) for v in Y], dtype=object)
    params = {"w": np.array([Fraction(1)], dtype=object), "b": Fraction(0)}
    J, grads = linreg.loss_and_grad(params, Xf, yf, scale=Fraction(1))
    assert J == Fraction(14, 3)
    assert grads["w"][0] == Fraction(-56, 3)
    assert grads["b"] == Fraction(-4)
    lr = Fraction(1, 10)
    theta = params["w"][0] - lr * grads["w"][0]
    b = params["b"] - lr * grads["b"]
    assert theta == Fraction(43, 15)  # 2.8666...
    assert b == Fraction(2, 5)
    assert round(float(theta), 4) == 2.8667 and float(b) == 0.4


class Record(GDHook):
    def __init__(self):
        self.states = []

    def on_iteration_end(self, state):
        self.states.append((state.loss, {k: np.copy(v) for k, v in state.grads.items()}))


def test_one_step_through_fit_linreg():
    rec = Record()
    r = fit_linreg(X, Y, lr=0.1, iters=1, loss_scale=1.0, init={"w": [1.0], "b": 0.0},
                   callbacks=[rec])
    loss0, grads0 = rec.states[0]
    assert loss0 == pytest.approx(14 / 3, rel=1e-15)
    assert grads0["w"][0] == pytest.approx(-56 / 3, rel=1e-15)
    assert grads0["b"] == pytest.approx(-4.0, rel=1e-15)
    assert r.w[0] == pytest.approx(43 / 15, rel=1e-15)
    assert r.b == pytest.approx(0.4, rel=1e-15)
    assert r.gd.steps == 1 and r.gd.losses[0] == pytest.approx(14 / 3)


def test_half_scale_halves_loss_and_gradient():
    J1, g1 = linreg.loss_and_grad({"w": np.array([1.0]), "b": 0.0}, np.array([[2.0], [4], [6]]),
                                  np.array([3.0, 6, 9]), scale=1.0)
    J2, g2 = linreg.loss_and_grad({"w": np.array([1.0]), "b": 0.0}, np.array([[2.0], [4], [6]]),
                                  np.array([3.0, 6, 9]), scale=0.5)
    assert J2 == pytest.approx(J1 / 2) and g2["w"][0] == pytest.approx(g1["w"][0] / 2)


def test_continuing_at_this_rate_diverges_with_a_hint():
    # The Hessian's largest eigenvalue here is ≈ 39.06, so the stability limit 2/L ≈ 0.0512 < 0.1.
    with pytest.raises(DivergenceError, match="smaller") as e:
        fit_linreg(X, Y, lr=0.1, iters=200, loss_scale=1.0, init={"w": [1.0], "b": 0.0})
    assert "0.0512" in str(e.value)


def test_smaller_rate_reaches_the_exact_line():
    r = fit_linreg(X, Y, lr=0.04, iters=20000, tol=1e-12, loss_scale=1.0,
                   init={"w": [1.0], "b": 0.0})
    assert r.gd.converged
    assert r.w[0] == pytest.approx(1.5, abs=1e-9) and r.b == pytest.approx(0.0, abs=1e-9)
