"""Time to reach the least-squares optimum on standardised diabetes, four ways.

    PYTHONPATH=src python benchmarks/scratch_convergence.py [--repeats 20]

1. `zerotune.scratch.fit_linreg` (NumPy gradient descent, batch, heavy-ball momentum);
2. the same update written as a bare NumPy loop (no driver, no callbacks): the driver's overhead;
3. the closed form (least squares by SVD, and the normal equations);
4. a plain PyTorch full-batch gradient-descent loop (autograd + torch.optim.SGD with the same
   learning rate and momentum, float64). The project's trainer (`zerotune.train`) is not ready
   yet, so this hand-written loop stands in for it.

"Reached" means ‖θ − θ*‖/‖θ*‖ <= 1e-6, θ = (w, b), θ* from the closed form. The number of
iterations each iterative method needs is found first (with a per-iteration check); the timed runs
then do exactly that many iterations without the check. Times are the median of --repeats runs on
one machine; ratios are relative to the NumPy gradient descent of this package.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from zerotune.scratch import Callback, closed_form, fit_linreg, linreg, load_table, split  # noqa: E402

TARGET = 1e-6
LR, MOMENTUM = 0.1, 0.9  # the `zerotune scratch linreg` defaults


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class FirstReach(Callback):
    """Records the first iteration whose parameters are within TARGET of the optimum."""

    def __init__(self, exact):
        self.exact, self.at = exact, None

    def on_iteration_end(self, state):
        if self.at is None and linreg.relative_error(state.params, self.exact) <= TARGET:
            self.at = state.iteration


def bare_numpy(X, y, iters):
    m = X.shape[0]
    w, b = np.zeros(X.shape[1]), 0.0
    vw, vb = np.zeros_like(w), 0.0
    for _ in range(iters):
        r = X @ w + b - y
        gw, gb = X.T @ r / m, r.sum() / m
        vw, vb = MOMENTUM * vw - LR * gw, MOMENTUM * vb - LR * gb
        w, b = w + vw, b + vb
    return {"w": w, "b": np.asarray(b)}


def torch_loop(X, y, iters, dtype, exact=None):
    """Full-batch gradient descent in PyTorch; with `exact`, returns the first iteration that
    reaches the target."""
    import torch

    Xt, yt = torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=dtype)
    model = torch.nn.Linear(X.shape[1], 1, dtype=dtype)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    # torch's SGD momentum (v = μv + g; θ -= lr·v) gives the same iterates as heavy ball.
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    for it in range(1, iters + 1):
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * torch.mean((model(Xt).squeeze(1) - yt) ** 2)
        loss.backward()
        opt.step()
        if exact is not None:
            p = {"w": model.weight.detach().double().numpy()[0],
                 "b": model.bias.detach().double().numpy()[0]}
            if linreg.relative_error(p, exact) <= TARGET:
                return it, p
    p = {"w": model.weight.detach().double().numpy()[0].copy(),
         "b": np.asarray(model.bias.detach().double().numpy()[0])}
    return iters, p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    import torch

    t = load_table("diabetes")
    s = split(t.X, t.y, test_size=0.25, seed=0)
    X, y = s.X_train, s.y_train
    exact = closed_form(X, y)

    reach = FirstReach(exact)
    fit_linreg(X, y, lr=LR, momentum=MOMENTUM, iters=20_000, callbacks=[reach])
    n_np = reach.at
    n_torch, _ = torch_loop(X, y, 20_000, torch.float64, exact)

    rows = []

    def ours():
        return fit_linreg(X, y, lr=LR, momentum=MOMENTUM, iters=n_np).params

    rows.append(("zerotune.scratch.fit_linreg (NumPy GD)", n_np, median_time(ours, args.repeats),
                 linreg.relative_error(ours(), exact)))
    rows.append(("bare NumPy loop, same update", n_np,
                 median_time(lambda: bare_numpy(X, y, n_np), args.repeats),
                 linreg.relative_error(bare_numpy(X, y, n_np), exact)))
    rows.append(("closed form: np.linalg.lstsq", "-",
                 median_time(lambda: closed_form(X, y, "lstsq"), args.repeats * 10), 0.0))
    rows.append(("closed form: normal equations", "-",
                 median_time(lambda: closed_form(X, y, "normal"), args.repeats * 10),
                 linreg.relative_error(closed_form(X, y, "normal"), exact)))
    rows.append(("PyTorch full-batch GD loop (float64, CPU)", n_torch,
                 median_time(lambda: torch_loop(X, y, n_torch, torch.float64), args.repeats),
                 linreg.relative_error(torch_loop(X, y, n_torch, torch.float64)[1], exact)))
    f32 = torch_loop(X, y, n_torch, torch.float32)[1]

    base = rows[0][2]
    print(f"Standardised diabetes: {X.shape[0]} training rows x {X.shape[1]} features; "
          f"target ||theta - theta*|| / ||theta*|| <= {TARGET:g}")
    print(f"Gradient descent: batch, lr={LR}, momentum={MOMENTUM}, J = 1/(2m) sum r^2, "
          f"zero start; median of {args.repeats} runs")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, "
          f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print("The project's trainer (zerotune.train) is not ready; the PyTorch row is a plain "
          "hand-written loop.\n")
    print("| method | iterations | time (ms) | time / NumPy GD | final rel. error |")
    print("|---|---:|---:|---:|---:|")
    for name, iters, sec, err in rows:
        shown = "reference" if "lstsq" in name else f"{err:.1e}"
        print(f"| {name} | {iters} | {sec * 1e3:.3f} | {sec / base:.3f} | {shown} |")
    print(f"\nPer iteration: NumPy GD {base / n_np * 1e6:.1f} us, "
          f"PyTorch {rows[4][2] / n_torch * 1e6:.1f} us.")
    print(f"PyTorch float32, same {n_torch} iterations: rel. error "
          f"{linreg.relative_error(f32, exact):.1e} (float32 cannot reliably resolve 1e-6).")


if __name__ == "__main__":
    main()
