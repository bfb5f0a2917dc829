"""`zerotune cv`: k-fold cross-validation, each fold a run directory made by `train`, and their mean ± std.

The folds split train+val (``data.cv_folds``, ``data.cv_fold``: stratified for classification); the
test split stays held out and is the same in every fold. Each fold's run directory is as
self-contained as any other: its config names its fold, so eval and export rebuild the same split.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Config, apply_overrides, build_config
from ..data.build import check_foldable
from ..errors import UserError
from ..run.files import create_run_dir, create_unique_run_dir, cv_summary_file, fold_run_name, new_run_name, write_json
from .train import default_run_prefix, prepare, train

# The metrics of each split reported per task (the monitored one comes first, from the training record).
SPLIT_METRICS = {"classification": ("accuracy", "f1_macro", "loss"), "regression": ("r2", "mse", "mae", "loss")}


@dataclass
class CVResult:
    path: Path  # the folder holding fold-0 ... fold-(K-1) and cv.json
    folds: list[Path]
    summary: dict  # what cv.json holds: per metric its mean, std and per-fold values


def cross_validate(config: Config, folds: int, name: str | None = None, callbacks: list | None = None) -> CVResult:
    """Train one run per fold under ``<log.dir>/<name>/fold-k`` and summarise them.

    Args:
        config: the recipe's Config; ``log.name`` is replaced by the fold names.
        folds: K, at least 2 and at most the smallest class's count in train+val.
        name: the folder of the fold runs (default ``<data>-<model>-cv-<time>``).
        callbacks: extra callbacks for every fold's training.

    Returns:
        The folder, the fold run directories and the summary (also written as cv.json there).
    """
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    check_foldable(config.data.name)
    base = config.to_dict()

    # Outside a terminal each fold's evaluation lines would bury the summary: one line per fold instead.
    per_fold_lines = config.log.progress and not sys.stdout.isatty()
    quiet = ["log.progress=false"] if per_fold_lines else []

    def fold_config(k: int, where: Path | str) -> Config:
        return build_config(apply_overrides(base, [f"data.cv_folds={folds}", f"data.cv_fold={k}", *quiet,
                                                   f"log.dir={json.dumps(str(where))}", f"log.name={fold_run_name(k)}"]))

    prepare(fold_config(0, config.log.dir))  # data (K against the class counts), model, monitor: nothing written
    root = config.log.dir
    path = create_run_dir(root, name) if name else create_unique_run_dir(
        root, new_run_name(default_run_prefix(config) + "-cv"))
    results = []
    for k in range(folds):
        results.append(train(fold_config(k, path), callbacks=callbacks))
        if per_fold_lines:
            print(fold_line(results[-1].run_dir.name, results[-1].metrics), flush=True)
    summary = summarise([r.metrics for r in results], [r.run_dir.name for r in results])
    write_json(cv_summary_file(path), summary)
    return CVResult(path, [r.run_dir for r in results], summary)


def fold_line(name: str, metrics: dict) -> str:
    """One finished fold, e.g. ``fold-0: best val/loss 0.1204 (step 400), test/accuracy 0.9722, 400 steps in 6.1 s``."""
    t = metrics["training"]
    task = "classification" if "accuracy" in metrics["test"] else "regression"
    key = SPLIT_METRICS[task][0]
    best = "n/a" if t["best"] is None else f"{t['best']:.4f} (step {t['best_step']})"
    test = metrics["test"].get(key)
    test = "n/a" if not isinstance(test, (int, float)) else f"{test:.4f}"
    return f"{name}: best {t['monitor']} {best}, test/{key} {test}, {t['steps']} steps in {t['seconds']:.1f} s"


def summarise(metrics: list[dict], names: list[str]) -> dict:
    """Mean and (population) standard deviation over the folds of the monitored and the main metrics."""
    training = metrics[0]["training"]
    task = "classification" if "accuracy" in metrics[0]["val"] else "regression"
    values = {f"best {training['monitor']}": [m["training"]["best"] for m in metrics]}
    for split in ("val", "test"):
        for key in SPLIT_METRICS[task]:
            found = [m[split].get(key) for m in metrics]
            if all(isinstance(v, (int, float)) for v in found):
                values[f"{split}/{key}"] = found
    table = {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": [float(x) for x in v]}
             for k, v in values.items() if all(x is not None for x in v)}
    return {"folds": len(metrics), "runs": names, "monitor": training["monitor"], "metrics": table}


def format_summary(summary: dict) -> str:
    """The summary as a text table: metric, mean ± std, then each fold's value."""
    header = ["metric", "mean ± std", *summary["runs"]]
    rows = [[k, f"{v['mean']:.4f} ± {v['std']:.4f}", *(f"{x:.4f}" for x in v["folds"])]
            for k, v in summary["metrics"].items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in [header, *rows])
