"""The NumPy MLP: accuracy on digits and the initialisation statistics."""

import numpy as np
import pytest

from zerotune.scratch import fit_mlp
from zerotune.scratch.mlp import default_init, init_params


def test_relu_mlp_reaches_95_percent_on_digits(digits_split):
    s = digits_split
    r = fit_mlp(s.X_train, s.y_train, hidden=[64], activation="relu", l2=1e-4, lr=0.1,
                momentum=0.9, method="minibatch", batch_size=32, iters=30, seed=0)
    assert r.init == "he" and r.sizes == [64, 64, 10] and r.n_params == 64 * 64 + 64 + 64 * 10 + 10
    assert r.accuracy(s.X_test, s.y_test) >= 0.95
    assert r.gd.losses[-1] < 0.1 * r.gd.losses[0]


def test_tanh_xavier_mlp_reaches_95_percent_on_digits(digits_split):
    s = digits_split
    r = fit_mlp(s.X_train, s.y_train, hidden=[32, 32], activation="tanh", init="xavier",
                lr=0.1, momentum=0.9, method="minibatch", iters=20, seed=1)
    assert r.accuracy(s.X_test, s.y_test) >= 0.95


@pytest.mark.parametrize("init,expected_var", [
    ("he", lambda i, o: 2.0 / i),
    ("xavier", lambda i, o: 2.0 / (i + o)),
])
def test_initial_weight_variance(init, expected_var):
    p = init_params([400, 300, 10], init, seed=0)
    assert p["W1"].var() == pytest.approx(expected_var(400, 300), rel=0.03)
    assert np.all(p["b1"] == 0)


def test_default_init_follows_activation():
    assert default_init("relu") == "he"
    assert default_init("tanh") == "xavier" and default_init("sigmoid") == "xavier"


def test_same_seed_same_result(digits_split):
    s = digits_split
    kw = dict(hidden=[16], lr=0.1, method="minibatch", iters=2, seed=5)
    a = fit_mlp(s.X_train, s.y_train, **kw)
    b = fit_mlp(s.X_train, s.y_train, **kw)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
