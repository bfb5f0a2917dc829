"""Machine learning from scratch in NumPy, every step visible in TensorBoard.

Least-squares linear regression by gradient descent (with the closed form to compare), logistic
regression (binary and softmax) and a small MLP trained by hand-written backpropagation, with
gradient checks against finite differences and PyTorch autograd. See docs/scratch.md.

Python API::

    from zerotune.scratch import fit_linreg, closed_form
    result = fit_linreg(X, y, lr=0.1, iters=1000, tol=1e-10, momentum=0.9)

Command line: ``zerotune scratch linreg|logreg|mlp --data NAME_OR_CSV ...``.
"""

import importlib

# Names are imported on first use, so the CLI can register `scratch` without loading NumPy.
_EXPORTS = {
    "DataConfig": "config", "LinRegConfig": "config", "LogRegConfig": "config", "MLPConfig": "config",
    "OutputConfig": "config", "Split": "data", "Table": "data", "load_table": "data", "split": "data",
    "LinRegResult": "linreg", "closed_form": "linreg", "fit_linreg": "linreg", "LogRegResult": "logreg",
    "fit_logreg": "logreg", "MLPResult": "mlp", "fit_mlp": "mlp", "GDHook": "optim", "GDConfig": "optim",
    "GDResult": "optim", "GDState": "optim", "minimize": "optim", "RunSummary": "runs", "run_linreg": "runs",
    "run_logreg": "runs", "run_mlp": "runs",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
