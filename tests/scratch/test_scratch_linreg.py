"""Linear regression: gradient descent against the closed form, conditioning, stopping rules."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from zerotune.scratch import closed_form, conditioning, fit_linreg, linreg


def test_gd_reaches_closed_form_on_standardised_diabetes(diabetes_split):
    s = diabetes_split
    exact = closed_form(s.X_train, s.y_train)
    r = fit_linreg(s.X_train, s.y_train, lr=0.1, momentum=0.9, iters=5000, tol=1e-10)
    assert r.gd.converged and r.gd.iterations < 5000
    assert linreg.relative_error(r.params, exact) < 1e-6
    # weights alone too, not only the (large) bias
    assert np.linalg.norm(r.w - exact["w"]) / np.linalg.norm(exact["w"]) < 1e-6
    assert r.gd.final_loss == pytest.approx(linreg.loss(exact, s.X_train, s.y_train), rel=1e-12)


def test_plain_batch_gd_without_momentum_also_converges(diabetes_split):
    s = diabetes_split
    exact = closed_form(s.X_train, s.y_train)
    r = fit_linreg(s.X_train, s.y_train, lr=0.4, iters=20000, tol=1e-10)
    assert r.gd.converged
    assert linreg.relative_error(r.params, exact) < 1e-6


def test_momentum_needs_fewer_iterations(diabetes_split):
    s = diabetes_split
    plain = fit_linreg(s.X_train, s.y_train, lr=0.2, iters=20000, tol=1e-8)
    heavy = fit_linreg(s.X_train, s.y_train, lr=0.2, momentum=0.9, iters=20000, tol=1e-8)
    assert heavy.gd.converged and plain.gd.converged
    assert heavy.gd.iterations * 3 < plain.gd.iterations


def test_closed_form_solvers_agree_with_sklearn(diabetes_split):
    s = diabetes_split
    a = closed_form(s.X_train, s.y_train, "lstsq")
    b = closed_form(s.X_train, s.y_train, "normal")
    ref = LinearRegression().fit(s.X_train, s.y_train)
    np.testing.assert_allclose(a["w"], ref.coef_, rtol=1e-9)
    assert float(a["b"]) == pytest.approx(ref.intercept_, rel=1e-12)
    assert linreg.relative_error(b, a) < 1e-10


@pytest.mark.parametrize("method,kw", [
    ("minibatch", dict(lr=0.05, momentum=0.9, decay=0.1, batch_size=32, iters=100)),
    ("sgd", dict(lr=0.01, decay=0.1, iters=20)),
])
def test_stochastic_methods_get_close(diabetes_split, method, kw):
    s = diabetes_split
    best = linreg.loss(closed_form(s.X_train, s.y_train), s.X_train, s.y_train)
    r = fit_linreg(s.X_train, s.y_train, method=method, **kw)
    n = s.X_train.shape[0]
    per_iter = n if method == "sgd" else -(-n // kw.get("batch_size", 32))
    assert r.gd.steps == per_iter * kw["iters"]
    assert r.gd.final_loss < best * 1.01


def test_decay_lowers_the_learning_rate():
    from zerotune.scratch import GDHook

    class Rates(GDHook):
        def __init__(self):
            self.lr = []

        def on_iteration_end(self, state):
            self.lr.append(state.lr)

    rates = Rates()
    fit_linreg([[1.0], [2.0], [3.0]], [1.0, 2.0, 3.0], lr=0.1, decay=1.0, iters=3,
               callbacks=[rates])
    assert rates.lr[1:] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_iteration_limit_and_tolerance(diabetes_split):
    s = diabetes_split
    capped = fit_linreg(s.X_train, s.y_train, lr=0.1, iters=7, tol=0.0)
    assert capped.gd.iterations == 7 and not capped.gd.converged and len(capped.gd.losses) == 8
    loose = fit_linreg(s.X_train, s.y_train, lr=0.1, momentum=0.9, iters=5000, tol=1e-3)
    tight = fit_linreg(s.X_train, s.y_train, lr=0.1, momentum=0.9, iters=5000, tol=1e-9)
    assert loose.gd.converged and loose.gd.iterations < tight.gd.iterations
    assert loose.gd.grad_norms[-1] <= 1e-3 * loose.gd.grad_norms[0]


def test_standardisation_improves_conditioning_and_speed(diabetes_split):
    s = diabetes_split
    std, raw = conditioning.compare_scaling(s.X_train_raw, s.X_train, s.y_train, iters=3000)
    assert std.label == "standardized" and raw.label == "raw"
    assert std.cond == pytest.approx(21.04, rel=1e-3)
    assert raw.cond == pytest.approx(7127, rel=1e-3)
    assert raw.kappa == pytest.approx(raw.cond**2, rel=1e-6)
    assert std.iters_to_target is not None and std.iters_to_target < 3000
    assert raw.iters_to_target is None and raw.excess[-1] > 0.05


def test_stable_step_limit_matches_divergence():
    X = np.array([[2.0], [4.0], [6.0]])
    lr_max = 2.0 / conditioning.hessian_eigenvalues(X, 1.0)[-1]
    ok = fit_linreg(X, [3, 6, 9], lr=0.95 * lr_max, iters=300, loss_scale=1.0)
    assert np.isfinite(ok.gd.final_loss)
    with pytest.raises(Exception, match="diverged"):
        fit_linreg(X, [3, 6, 9], lr=1.05 * lr_max, iters=3000, loss_scale=1.0)


def test_predict_and_loss_of_result():
    r = fit_linreg([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0], lr=0.3, iters=2000, tol=1e-12)
    np.testing.assert_allclose(r.predict([[3.0]]), [7.0], rtol=1e-8)
    assert r.loss([[3.0]], [7.0]) == pytest.approx(0.0, abs=1e-14)
