"""One function per `zerotune scratch` command: load data, train, log, write the run directory.

Each ``run_*`` function takes a typed config, creates ``runs/<name>/`` with the TensorBoard
events, ``config.yaml``, ``meta.json`` (data and standardisation statistics), ``params.json``
(final parameters) and ``metrics.json``, and returns a `RunSummary`. The CLI only builds the
config and prints the summary.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..run.atomic import atomic_write_text
from ..run.files import RunDir, create_run_dir, create_unique_run_dir, new_run_name, write_json
from . import conditioning, figures, linreg, logreg, mlp
from .config import DataConfig, LinRegConfig, LogRegConfig, MLPConfig, OutputConfig
from .data import Split, Table, as_classification, as_regression, load_table, split
from .optim import Params
from .tblog import BoardLogger, PathRecorder, markdown_table


@dataclass
class RunSummary:
    """What a command produced.

    Attributes:
        run_dir: the run directory.
        metrics: the content of metrics.json.
        lines: a short human-readable summary.
    """

    run_dir: Path
    metrics: dict
    lines: list[str]

    def text(self) -> str:
        return "\n".join(self.lines)


def _config_yaml(command: str, cfg) -> str:
    data = {"command": f"scratch {command}", **dataclasses.asdict(cfg)}
    try:
        import yaml
    except ImportError:  # JSON is valid YAML, so the file stays readable by YAML loaders
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def view_line(runs_dir) -> str:
    """The summary line that tells how to look at the runs: zerotune's own TensorBoard command."""
    return f"  view: zerotune board {shlex.quote(str(runs_dir))}"


def _load(data: DataConfig, task: str) -> tuple[Table, Split]:
    table = load_table(data.data, data.target, data.features)
    table = as_regression(table) if task == "regression" else as_classification(table)
    parts = split(table.X, table.y, test_size=data.test_size, seed=data.seed,
                  standardize=data.standardize, stratify=task == "classification")
    return table, parts


def _meta(table: Table, parts: Split) -> dict:
    return {
        "source": table.source,
        "task": table.task,
        "feature_names": table.feature_names,
        "target": table.target_name,
        "class_names": table.class_names,
        "n_train": int(parts.X_train.shape[0]),
        "n_test": int(parts.X_test.shape[0]),
        "standardize_mean": None if parts.mean is None else parts.mean.tolist(),
        "standardize_std": None if parts.std is None else parts.std.tolist(),
    }


@contextmanager
def _run(command: str, cfg, output: OutputConfig, table: Table, parts: Split):
    """Create the run directory and writer; on a failure, record it in metrics.json and re-raise."""
    if output.name:
        run_dir = create_run_dir(output.runs_dir, output.name)
    else:
        run_dir = create_unique_run_dir(output.runs_dir, new_run_name(f"scratch-{command}"))
    config_text = _config_yaml(command, cfg)
    atomic_write_text(RunDir(run_dir).config, config_text)
    write_json(RunDir(run_dir).meta, _meta(table, parts))
    writer = _event_sink(run_dir)
    writer.add_text("config", "```\n" + config_text + "```", 0)
    try:
        yield run_dir, writer
    except UserError as e:
        write_json(RunDir(run_dir).metrics, {"status": "failed", "error": str(e)})
        raise
    finally:
        writer.close()


def _event_sink(logdir: Path):
    """zerotune's event writer, without the memory curve: these NumPy lessons train no torch model."""
    from ..track.sink import EventSink  # loads torch: only when a run writes, as tensorboardX did

    return EventSink(logdir, record_memory=False)


def _params_json(params: Params) -> dict:
    return {k: np.asarray(v).tolist() for k, v in params.items()}


def _describe(table: Table, parts: Split, standardize: bool) -> str:
    return (f"{table.source}: {parts.X_train.shape[0]} train / {parts.X_test.shape[0]} test rows, "
            f"{parts.X_train.shape[1]} feature{'s' if parts.X_train.shape[1] != 1 else ''}, "
            f"{'standardised' if standardize else 'not standardised'}")


def run_linreg(cfg: LinRegConfig | None = None) -> RunSummary:
    """`zerotune scratch linreg`: gradient descent vs the closed form, with conditioning study.

    Args:
        cfg: options; defaults fit standardised diabetes.

    Returns:
        The run directory, metrics and a human summary.

    Raises:
        UserError: for bad data or options, or when gradient descent diverges.
    """
    cfg = cfg or LinRegConfig()
    cfg.validate()
    table, parts = _load(cfg.data, "regression")
    s = cfg.loss_scale
    X, y, Xt, yt = parts.X_train, parts.y_train, parts.X_test, parts.y_test
    with _run("linreg", cfg, cfg.output, table, parts) as (run_dir, writer):
        t0 = time.perf_counter()
        exact = linreg.closed_form(X, y)
        cf_seconds = time.perf_counter() - t0

        logger = BoardLogger(writer, cfg.output.log_every, 0, table.feature_names)
        path = PathRecorder() if X.shape[1] == 1 else None
        fit = linreg.fit_linreg(X, y, cfg.gd, loss_scale=s,
                                callbacks=[logger] + ([path] if path else []))

        cond = conditioning.condition_number(X)
        metrics = {
            "status": "ok",
            "final_loss": fit.gd.final_loss,
            "closed_form_loss": linreg.loss(exact, X, y, s),
            "test_loss": linreg.loss(fit.params, Xt, yt, s),
            "closed_form_test_loss": linreg.loss(exact, Xt, yt, s),
            "test_rmse": float(np.sqrt(np.mean((linreg.predict(fit.params, Xt) - yt) ** 2))),
            "rel_param_error": linreg.relative_error(fit.params, exact),
            "iterations": fit.gd.iterations,
            "steps": fit.gd.steps,
            "converged": fit.gd.converged,
            "seconds": fit.gd.seconds,
            "closed_form_seconds": cf_seconds,
            "condition_number": cond,
            "loss_scale": s,
        }
        writer.add_scalar("closed_form/loss", metrics["closed_form_loss"], 0)
        writer.add_scalar("closed_form/rel_param_error", metrics["rel_param_error"],
                          fit.gd.iterations)
        writer.add_scalar("conditioning/cond_design_matrix", cond, 0)

        if path is not None:
            img = figures.loss_contour(X[:, 0], y, path.as_array(),
                                       (float(exact["w"][0]), float(exact["b"])), s,
                                       table.feature_names[0])
            writer.add_image("loss_surface/gradient_descent_path", img, fit.gd.iterations)

        scaling = []
        if cfg.compare_scaling:
            scaling = _log_scaling(run_dir, writer, parts, cfg)
            for r in scaling:
                metrics[f"cond_{r.label}"] = r.cond
                metrics[f"kappa_{r.label}"] = r.kappa
                metrics[f"iters_to_1e-6_{r.label}"] = r.iters_to_target

        rows = [("gradient descent", f"{metrics['final_loss']:.6g}", f"{metrics['test_loss']:.6g}",
                 f"{fit.gd.iterations}", f"{fit.gd.seconds:.4f}"),
                ("closed form (lstsq)", f"{metrics['closed_form_loss']:.6g}",
                 f"{metrics['closed_form_test_loss']:.6g}", "-", f"{cf_seconds:.4f}")]
        writer.add_text("result", markdown_table(
            rows, ("method", "train loss", "test loss", "iterations", "seconds"))
            + f"\n\nrelative parameter error: {metrics['rel_param_error']:.3g}", 0)
        write_json(RunDir(run_dir).params, {"gradient_descent": _params_json(fit.params),
                                            "closed_form": _params_json(exact)})
        write_json(RunDir(run_dir).metrics, metrics)

    lines = _linreg_lines(_describe(table, parts, cfg.data.standardize), cfg.gd.method, metrics,
                          scaling)
    lines += [f"  run directory: {run_dir}", view_line(cfg.output.runs_dir)]
    return RunSummary(run_dir, metrics, lines)


def _linreg_lines(description: str, method: str, metrics: dict, scaling) -> list[str]:
    """The summary of a linreg run: gradient descent vs the closed form, then the scaling study."""
    m = metrics
    lines = [
        f"scratch linreg on {description}",
        f"  gradient descent ({method}): train loss {m['final_loss']:.6g} after "
        f"{m['iterations']} iterations ({'converged' if m['converged'] else 'iteration limit'}"
        f", {m['seconds']:.3f} s)",
        f"  closed form:      train loss {m['closed_form_loss']:.6g} "
        f"({m['closed_form_seconds'] * 1e3:.2f} ms); relative parameter error "
        f"{m['rel_param_error']:.2e}",
        f"  test loss {m['test_loss']:.6g}, test RMSE {m['test_rmse']:.4g}",
    ]
    for r in scaling:
        reached = (f"reached 1e-6 of the optimum in {r.iters_to_target} iterations"
                   if r.iters_to_target is not None
                   else f"not within 1e-6 after {len(r.excess) - 1} iterations "
                        f"(relative excess {r.excess[-1]:.2g})")
        lines.append(f"  {r.label:>12}: cond(X) {r.cond:.4g}, plain GD at 1/L {reached}")
    return lines


def _log_scaling(run_dir: Path, writer, parts: Split, cfg: LinRegConfig):
    """Raw vs standardised features: curves in two child runs (so TensorBoard overlays them),
    a combined figure, and a table of condition numbers."""
    from .data import standardization_stats

    raw = parts.X_train_raw
    mean, std = standardization_stats(raw)
    results = conditioning.compare_scaling(raw, (raw - mean) / std, parts.y_train,
                                           cfg.gd.iters, cfg.loss_scale)
    every = cfg.output.log_every
    for r in results:
        with _event_sink(RunDir(run_dir).scaling / r.label) as child:
            for i in range(0, len(r.excess), every):
                child.add_scalar("scaling/relative_excess_loss", max(r.excess[i], 1e-16), i)
        writer.add_scalar(f"conditioning/cond_{r.label}", r.cond, 0)
        writer.add_scalar(f"conditioning/kappa_hessian_{r.label}", r.kappa, 0)
    img = figures.loss_curves({f"{r.label} (cond {r.cond:.3g})": r.excess for r in results},
                              "(J − J*) / J*", "Plain gradient descent at step 1/L")
    writer.add_image("conditioning/raw_vs_standardized", img, 0)
    rows = [(r.label, f"{r.cond:.4g}", f"{r.kappa:.4g}", f"{r.lr:.3g}",
             r.iters_to_target if r.iters_to_target is not None else f"> {len(r.excess) - 1}")
            for r in results]
    writer.add_text("conditioning", markdown_table(
        rows, ("features", "cond(X)", "κ(Hessian)", "step 1/L", "iterations to 1e-6")), 0)
    return results


def _classification_metrics(fn_acc, X, y, Xt, yt):
    def metrics(p):
        return {"accuracy/train": fn_acc(p, X, y), "accuracy/test": fn_acc(p, Xt, yt)}
    return metrics


def run_logreg(cfg: LogRegConfig | None = None) -> RunSummary:
    """`zerotune scratch logreg`: binary or softmax regression, compared with scikit-learn.

    Args:
        cfg: options; defaults fit standardised breast_cancer.

    Returns:
        The run directory, metrics and a human summary.

    Raises:
        UserError: for bad data or options, or when gradient descent diverges.
    """
    cfg = cfg or LogRegConfig()
    cfg.validate()
    table, parts = _load(cfg.data, "classification")
    X, y, Xt, yt = parts.X_train, parts.y_train, parts.X_test, parts.y_test
    k = len(table.class_names) if table.class_names else int(table.y.max() + 1)
    with _run("logreg", cfg, cfg.output, table, parts) as (run_dir, writer):
        logger = BoardLogger(writer, cfg.output.log_every, 0, table.feature_names)
        fit = logreg.fit_logreg(X, y, cfg.gd, l2=cfg.l2, n_classes=k, callbacks=[logger],
                                metrics=_classification_metrics(logreg.accuracy, X, y, Xt, yt))
        ref = logreg.sklearn_reference(X, y, Xt, yt, cfg.l2)
        base = logreg.binary_loss_and_grad if fit.binary else logreg.softmax_loss_and_grad
        metrics = {
            "status": "ok",
            "model": "binary" if fit.binary else "softmax",
            "n_classes": k,
            "train_accuracy": logreg.accuracy(fit.params, X, y),
            "test_accuracy": logreg.accuracy(fit.params, Xt, yt),
            "sklearn_train_accuracy": ref["train_accuracy"],
            "sklearn_test_accuracy": ref["test_accuracy"],
            "sklearn_C": ref["C"],
            "final_loss": fit.gd.final_loss,
            "test_loss": base(fit.params, Xt, yt, cfg.l2)[0],
            "iterations": fit.gd.iterations,
            "steps": fit.gd.steps,
            "converged": fit.gd.converged,
            "seconds": fit.gd.seconds,
        }
        metrics["test_accuracy_gap_points"] = 100 * (metrics["test_accuracy"]
                                                     - metrics["sklearn_test_accuracy"])
        writer.add_scalar("sklearn/test_accuracy", ref["test_accuracy"], 0)
        rows = [("NumPy gradient descent", f"{metrics['train_accuracy']:.4f}",
                 f"{metrics['test_accuracy']:.4f}"),
                (f"scikit-learn (C={ref['C']:.3g})", f"{ref['train_accuracy']:.4f}",
                 f"{ref['test_accuracy']:.4f}")]
        writer.add_text("result", markdown_table(rows, ("model", "train acc", "test acc")), 0)
        write_json(RunDir(run_dir).params, _params_json(fit.params))
        write_json(RunDir(run_dir).metrics, metrics)

    lines = [
        f"scratch logreg ({metrics['model']}, {k} classes) on "
        f"{_describe(table, parts, cfg.data.standardize)}",
        f"  gradient descent: loss {metrics['final_loss']:.5g} after {fit.gd.iterations} "
        f"iterations ({'converged' if fit.gd.converged else 'iteration limit'}, "
        f"{fit.gd.seconds:.3f} s)",
        f"  accuracy train {metrics['train_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}"
        f"   (scikit-learn: train {ref['train_accuracy']:.4f}, test {ref['test_accuracy']:.4f})",
        f"  run directory: {run_dir}",
        view_line(cfg.output.runs_dir),
    ]
    return RunSummary(run_dir, metrics, lines)


def run_mlp(cfg: MLPConfig | None = None) -> RunSummary:
    """`zerotune scratch mlp`: an MLP trained by hand-written backpropagation.

    Args:
        cfg: options; defaults train a 64-64-10 ReLU network on standardised digits.

    Returns:
        The run directory, metrics and a human summary.

    Raises:
        UserError: for bad data or options, or when gradient descent diverges.
    """
    cfg = cfg or MLPConfig()
    cfg.validate()
    table, parts = _load(cfg.data, "classification")
    X, y, Xt, yt = parts.X_train, parts.y_train, parts.X_test, parts.y_test
    k = len(table.class_names) if table.class_names else int(table.y.max() + 1)
    act = cfg.activation

    def acc(p, A, b):
        return mlp.accuracy(p, A, b, act)

    with _run("mlp", cfg, cfg.output, table, parts) as (run_dir, writer):
        logger = BoardLogger(writer, cfg.output.log_every, cfg.output.hist_every)
        fit = mlp.fit_mlp(X, y, cfg.gd, hidden=cfg.hidden, activation=act, init=cfg.init,
                          l2=cfg.l2, n_classes=k, callbacks=[logger],
                          metrics=_classification_metrics(acc, X, y, Xt, yt))
        metrics = {
            "status": "ok",
            "sizes": fit.sizes,
            "activation": act,
            "init": fit.init,
            "n_params": fit.n_params,
            "train_accuracy": acc(fit.params, X, y),
            "test_accuracy": acc(fit.params, Xt, yt),
            "final_loss": fit.gd.final_loss,
            "test_loss": mlp.loss_and_grad(fit.params, Xt, yt, act, cfg.l2)[0],
            "iterations": fit.gd.iterations,
            "steps": fit.gd.steps,
            "converged": fit.gd.converged,
            "seconds": fit.gd.seconds,
        }
        rows = [("train", f"{metrics['train_accuracy']:.4f}", f"{metrics['final_loss']:.4g}"),
                ("test", f"{metrics['test_accuracy']:.4f}", f"{metrics['test_loss']:.4g}")]
        writer.add_text("result", markdown_table(rows, ("split", "accuracy", "loss")), 0)
        write_json(RunDir(run_dir).params, _params_json(fit.params))
        write_json(RunDir(run_dir).metrics, metrics)

    arch = "-".join(str(n) for n in fit.sizes)
    lines = [
        f"scratch mlp {arch} ({act}, {fit.init} init, {fit.n_params} parameters) on "
        f"{_describe(table, parts, cfg.data.standardize)}",
        f"  {cfg.gd.method} gradient descent: loss {metrics['final_loss']:.4g} after "
        f"{fit.gd.iterations} epochs / {fit.gd.steps} updates ({fit.gd.seconds:.2f} s)",
        f"  accuracy train {metrics['train_accuracy']:.4f}, test {metrics['test_accuracy']:.4f}",
        f"  run directory: {run_dir}",
        view_line(cfg.output.runs_dir),
    ]
    return RunSummary(run_dir, metrics, lines)
