"""Machine learning from scratch in NumPy, every step visible in TensorBoard.

Least-squares linear regression by gradient descent (with the closed form to compare), logistic
regression (binary and softmax) and a small MLP trained by hand-written backpropagation, with
gradient checks against finite differences and PyTorch autograd. See docs/scratch.md.

Python API::

    from zerotune.scratch import fit_linreg, closed_form
    result = fit_linreg(X, y, lr=0.1, iters=1000, tol=1e-10, momentum=0.9)

Command line: ``zerotune scratch linreg|logreg|mlp --data NAME_OR_CSV ...``.
"""

from .config import DataConfig, LinRegConfig, LogRegConfig, MLPConfig, OutputConfig
from .data import Split, Table, load_table, split
from .linreg import LinRegResult, closed_form, fit_linreg
from .logreg import LogRegResult, fit_logreg
from .mlp import MLPResult, fit_mlp
from .optim import Callback, GDConfig, GDResult, GDState, minimize
from .runs import RunSummary, run_linreg, run_logreg, run_mlp

__all__ = [
    "Callback",
    "DataConfig",
    "GDConfig",
    "GDResult",
    "GDState",
    "LinRegConfig",
    "LinRegResult",
    "LogRegConfig",
    "LogRegResult",
    "MLPConfig",
    "MLPResult",
    "OutputConfig",
    "RunSummary",
    "Split",
    "Table",
    "closed_form",
    "fit_linreg",
    "fit_logreg",
    "fit_mlp",
    "load_table",
    "minimize",
    "run_linreg",
    "run_logreg",
    "run_mlp",
    "split",
]
