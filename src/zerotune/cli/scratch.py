"""The `zerotune scratch` subcommand: flags → typed config → `runs.run_*`; no logic of its own.

`cli.main` calls `add_parser(subparsers)` and then ``args.func(args)``, turning a `UserError`
into one line on stderr and exit code 2. Running this module directly does the same::

    python -m zerotune.scratch linreg --data diabetes
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import UserError
from .common import command_parser, run_subcommand
from .lazyparse import defer_arguments

if TYPE_CHECKING:  # the modules below load NumPy: imported when `scratch` runs, not for `zerotune --help`
    from ..scratch.config import DataConfig, LinRegConfig, LogRegConfig, MLPConfig, OutputConfig
    from ..scratch.optim import GDConfig


def _csv_list(values: list[str] | str | None) -> list[str] | None:
    """Accept ``a,b`` as well as ``a b`` for list-valued flags."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [v for item in values for v in item.split(",") if v]


def _add_data_args(p: argparse.ArgumentParser, d: DataConfig) -> None:
    from ..scratch.data import BUILTIN

    g = p.add_argument_group("data")
    g.add_argument("--data", default=d.data,
                   help=f"built-in dataset ({', '.join(BUILTIN)}) or a CSV path "
                        f"(default: {d.data})")
    g.add_argument("--target", default=None, help="target column of a CSV file")
    g.add_argument("--features", nargs="+", default=None, metavar="COL",
                   help="keep only these feature columns (names or indices; 'a,b' or 'a b')")
    g.add_argument("--test-size", type=float, default=d.test_size,
                   help=f"fraction of rows held out for testing (default: {d.test_size})")
    g.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="use the features as they are instead of standardising them")
    g.add_argument("--seed", type=int, default=d.seed,
                   help="seed of the split, the shuffle and the initial weights "
                        f"(default: {d.seed})")


def _add_gd_args(p: argparse.ArgumentParser, gd: GDConfig, iters_help: str) -> None:
    from ..scratch.optim import METHODS

    g = p.add_argument_group("gradient descent")
    g.add_argument("--lr", type=float, default=gd.lr, help=f"learning rate (default: {gd.lr})")
    g.add_argument("--iters", type=int, default=gd.iters,
                   help=f"{iters_help} (default: {gd.iters})")
    g.add_argument("--tol", type=float, default=gd.tol,
                   help="stop when the gradient norm falls below tol times its starting value; "
                        f"0 = off (default: {gd.tol:g})")
    g.add_argument("--method", choices=METHODS, default=gd.method,
                   help=f"rows per update: all, --batch-size, or one (default: {gd.method})")
    g.add_argument("--batch-size", type=int, default=gd.batch_size,
                   help=f"rows per update for --method minibatch (default: {gd.batch_size})")
    g.add_argument("--momentum", type=float, default=gd.momentum,
                   help=f"heavy-ball momentum in [0, 1) (default: {gd.momentum})")
    g.add_argument("--decay", type=float, default=gd.decay,
                   help="learning-rate decay: lr / (1 + decay * iteration) "
                        f"(default: {gd.decay})")


def _add_output_args(p: argparse.ArgumentParser, o: OutputConfig, hist: bool = False) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--runs-dir", default=o.runs_dir,
                   help=f"parent of the run directory (default: {o.runs_dir})")
    g.add_argument("--name", default=None,
                   help="run directory name (default: scratch-<model>-<date>-<time>)")
    g.add_argument("--log-every", type=int, default=o.log_every,
                   help="iterations between parameter and gradient-norm scalars "
                        f"(default: {o.log_every})")
    if hist:
        g.add_argument("--hist-every", type=int, default=o.hist_every,
                       help="iterations between weight histograms; 0 = off "
                            f"(default: {o.hist_every})")


def _data(args) -> DataConfig:
    from ..scratch.config import DataConfig

    return DataConfig(data=args.data, target=args.target, features=_csv_list(args.features),
                      test_size=args.test_size, standardize=args.standardize, seed=args.seed)


def _gd(args) -> GDConfig:
    from ..scratch.optim import GDConfig

    return GDConfig(lr=args.lr, iters=args.iters, tol=args.tol, method=args.method,
                    batch_size=args.batch_size, momentum=args.momentum, decay=args.decay,
                    seed=args.seed)


def _output(args) -> OutputConfig:
    from ..scratch.config import OutputConfig

    return OutputConfig(runs_dir=args.runs_dir, name=args.name, log_every=args.log_every,
                        hist_every=getattr(args, "hist_every", 0))


def linreg_config(args) -> LinRegConfig:
    """Build the `scratch linreg` config from parsed flags."""
    from ..scratch.config import LinRegConfig

    return LinRegConfig(data=_data(args), gd=_gd(args), output=_output(args),
                        loss_scale=args.loss_scale, compare_scaling=args.compare)


def logreg_config(args) -> LogRegConfig:
    """Build the `scratch logreg` config from parsed flags."""
    from ..scratch.config import LogRegConfig

    return LogRegConfig(data=_data(args), gd=_gd(args), output=_output(args), l2=args.l2)


def mlp_config(args) -> MLPConfig:
    """Build the `scratch mlp` config from parsed flags."""
    from ..scratch.config import MLPConfig

    try:
        hidden = [int(h) for h in _csv_list(args.hidden)]
    except ValueError:
        raise UserError(
            f"--hidden takes integers such as '64' or '128,64', got {args.hidden}"
        ) from None
    return MLPConfig(data=_data(args), gd=_gd(args), output=_output(args), hidden=hidden,
                     activation=args.activation, init=args.init, l2=args.l2)


def _runner(build, run):
    def func(args) -> int:
        summary = run(build(args))
        print(summary.text())
        return 0
    return func


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``scratch`` with its commands linreg, logreg and mlp.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers()``.

    Returns:
        The ``scratch`` parser.
    """
    scratch = subparsers.add_parser(
        "scratch", help="models from scratch in NumPy: linear/logistic regression, MLP",
        description="Gradient descent and backpropagation written by hand in NumPy, "
                    "logged to TensorBoard and compared with exact or library solutions.")
    defer_arguments(scratch, _add_commands)
    return scratch


def _add_commands(scratch: argparse.ArgumentParser) -> None:
    from ..scratch.config import LinRegConfig, LogRegConfig, MLPConfig
    from ..scratch.runs import run_linreg, run_logreg, run_mlp

    sub = scratch.add_subparsers(dest="scratch_command", metavar="{linreg,logreg,mlp}")
    sub.required = True

    d = LinRegConfig()
    p = sub.add_parser("linreg", help="least-squares linear regression by gradient descent",
                       description="Fit linear regression by gradient descent and compare it "
                                   "with the closed-form (least-squares) solution.")
    _add_data_args(p, d.data)
    _add_gd_args(p, d.gd, "maximum iterations (one iteration = one pass over the data)")
    g = p.add_argument_group("model")
    g.add_argument("--loss-scale", type=float, default=d.loss_scale,
                   help="s in J = s/m * sum((y_hat - y)^2): 0.5 for 1/(2m), 1 for 1/m "
                        f"(default: {d.loss_scale})")
    g.add_argument("--no-compare", dest="compare", action="store_false",
                   help="skip the raw-vs-standardised conditioning comparison")
    _add_output_args(p, d.output)
    p.set_defaults(func=_runner(linreg_config, run_linreg))

    d = LogRegConfig()
    p = sub.add_parser("logreg", help="logistic regression (binary or softmax) with L2",
                       description="Fit logistic regression by gradient descent and compare "
                                   "its accuracy with scikit-learn's on the same split.")
    _add_data_args(p, d.data)
    _add_gd_args(p, d.gd, "maximum iterations (one iteration = one pass over the data)")
    g = p.add_argument_group("model")
    g.add_argument("--l2", type=float, default=d.l2,
                   help=f"L2 penalty on weights (default: {d.l2})")
    _add_output_args(p, d.output)
    p.set_defaults(func=_runner(logreg_config, run_logreg))

    d = MLPConfig()
    p = sub.add_parser("mlp", help="a small MLP trained by hand-written backpropagation",
                       description="Train a multilayer perceptron whose forward and backward "
                                   "passes are written by hand in NumPy.")
    _add_data_args(p, d.data)
    _add_gd_args(p, d.gd, "epochs")
    g = p.add_argument_group("model")
    g.add_argument("--hidden", nargs="+", default=[str(h) for h in d.hidden], metavar="N",
                   help=f"hidden layer widths, e.g. '128 64' or '128,64' (default: {d.hidden})")
    g.add_argument("--activation", choices=("relu", "sigmoid", "tanh"), default=d.activation,
                   help=f"hidden activation; the output is softmax (default: {d.activation})")
    g.add_argument("--init", choices=("xavier", "he"), default=None,
                   help="weight initialisation (default: he for relu, xavier otherwise)")
    g.add_argument("--l2", type=float, default=d.l2,
                   help=f"L2 penalty on weights (default: {d.l2})")
    _add_output_args(p, d.output, hist=True)
    p.set_defaults(func=_runner(mlp_config, run_mlp))


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone ``zerotune``-like parser holding only the ``scratch`` subcommand."""
    return command_parser(add_parser)


def main(argv: list[str] | None = None) -> int:
    """``python -m zerotune.scratch ...``: the same as ``zerotune scratch ...``."""
    return run_subcommand("scratch", add_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
