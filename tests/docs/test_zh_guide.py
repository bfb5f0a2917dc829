"""The Chinese guide's worked examples give the numbers the NumPy code computes.

docs/zh/least-squares-backprop.md works one gradient-descent step of least squares and one
backpropagation through a 2-2-2 ReLU network by hand; each figure it prints is recomputed here with
`zerotune.scratch` and looked up in the page, so that the page cannot drift from the code.
"""

from pathlib import Path

import numpy as np
import pytest

from zerotune.errors import UserError
from zerotune.scratch import fit_linreg, gradcheck, mlp

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "zh" / "least-squares-backprop.md").read_text(encoding="utf-8")
X, Y = np.array([[1.0, 2.0]]), np.array([0])


def _params():
    return {"W1": np.array([[0.1, 0.2], [0.3, -0.4]]), "b1": np.zeros(2),
            "W2": np.array([[0.5, -0.5], [0.2, 0.1]]), "b2": np.zeros(2)}


def _fmt(values) -> str:
    """[[-0.33181, 0], ...] as the page writes it: 5 decimals, exact zeros as 0, a real minus sign."""
    if np.ndim(values) == 0:
        v = round(float(values), 5)
        return "0" if v == 0 else f"{v:.5f}".rstrip("0").replace("-", "−")
    return "[" + ", ".join(_fmt(v) for v in values) + "]"


def _on_page(text: str) -> None:
    assert text in PAGE, f"{text!r} is not in docs/zh/least-squares-backprop.md"


def test_least_squares_step_and_divergence_match_the_page():
    r = fit_linreg([2, 4, 6], [3, 6, 9], lr=0.1, iters=1, loss_scale=1.0, init={"w": [1.0], "b": 0.0})
    _on_page(f"r.gd.losses      # [{r.gd.losses[0]!r}, {r.gd.losses[1]!r}]")
    assert r.w[0] == pytest.approx(43 / 15) and r.b == pytest.approx(0.4)
    _on_page("39.4")
    with pytest.raises(UserError) as err:  # the page quotes its message
        fit_linreg([2, 4, 6], [3, 6, 9], lr=0.1, iters=200, loss_scale=1.0, init={"w": [1.0], "b": 0.0})
    _on_page("\n" + str(err.value) + "\n")
    r = fit_linreg([2, 4, 6], [3, 6, 9], lr=0.04, iters=2000, loss_scale=1.0, init={"w": [1.0], "b": 0.0})
    assert r.w[0] == pytest.approx(1.5) and abs(r.b) < 1e-9
    _on_page(f"(array([1.5]), {r.b:.2e})")
    hessian = 2 / 3 * np.array([[56.0, 12.0], [12.0, 3.0]])
    top = np.linalg.eigvalsh(hessian)[-1]
    _on_page(f"L ≈ {top:.2f}")
    _on_page(f"α < 2/L ≈ {2 / top:.4f}")


def test_backprop_example_matches_the_page():
    params = _params()
    logits, cache = mlp.forward(params, X, "relu")
    _on_page(f"= {_fmt(cache[1][0][0])}")  # z1
    _on_page(f"= {_fmt(logits[0])}")  # z2
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    _on_page(f"P  = softmax(z2) = {_fmt(p)}")
    J, grads = mlp.loss_and_grad(params, X, Y, "relu")
    _on_page(f"J  = −log {_fmt(p[0])} = {_fmt(J)}")
    _on_page(f"J                  # {J!r}")
    _on_page(f"∂J/∂W2 = a1ᵀ δ2 = [[0.7·(−0.33181), 0.7·0.33181], [0, 0]] = {_fmt(grads['W2'])}")
    _on_page(f"∂J/∂b2 = δ2 = {_fmt(grads['b2'])}")
    _on_page(f"∂J/∂W1 = xᵀ δ1 = {_fmt(grads['W1'])}")
    _on_page(f"∂J/∂b1 = δ1 = {_fmt(grads['b1'])}")
    step = {k: params[k] - 0.1 * grads[k] for k in params}
    for name in ("W1", "W2", "b1", "b2"):
        _on_page(f"{name} = {_fmt(step[name])}")
    _on_page(f"降到 **{_fmt(mlp.loss_and_grad(step, X, Y, 'relu')[0])}**")


def test_backprop_example_gradients_pass_the_checks_the_page_quotes():
    fn = lambda p: mlp.loss_and_grad(p, X, Y, "relu")  # noqa: E731
    numerical = gradcheck.check_numerical(fn, _params())
    autograd = gradcheck.check_autograd(fn, gradcheck.torch_mlp_loss(X, Y, "relu", 0.0), _params())
    assert max(numerical.values()) < 1e-9 and max(autograd.values()) < 1e-14
    _on_page("每项约 3e-11")
    _on_page("约 8e-17")
