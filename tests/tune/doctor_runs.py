"""Synthetic run directories for the doctor's unit tests: chosen curves written with the EventSink."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import yaml

from zerotune.run.files import RunDir, write_json
from zerotune.track import jobs, stats
from zerotune.track.sink import EventSink

CONFIG = {"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [64], "dropout": 0.0, "batch_norm": False},
          "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 0.0}, "train": {"epochs": 10, "batch_size": 64},
          "log": {}}
META = {"source": "digits", "task": "classification", "input_shape": [1, 8, 8], "num_classes": 10,
        "sizes": {"train": 1257, "val": 180, "test": 360}}


def make_run(root: Path, name: str, curves: dict[str, list[tuple[int, float]]], *, config: dict | None = None,
             metrics: dict | None = None, activations: dict[str, torch.Tensor] | None = None,
             meta: dict | None = None) -> Path:
    """A run directory holding config.yaml, meta.json, optional metrics.json, and events with ``curves``."""
    run = RunDir(root / name)
    run.path.mkdir(parents=True)
    cfg = {**CONFIG, **(config or {})}
    run.config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    write_json(run.meta, meta or META)
    if metrics is not None:
        write_json(run.metrics, metrics)
    with EventSink(run.path, record_memory=False) as sink:
        by_step: dict[int, list] = {}
        for tag, points in curves.items():
            for step, value in points:
                by_step.setdefault(step, []).append((tag, value))
        for step in sorted(by_step):
            sink.scalars(step, tuple(by_step[step]))
        if activations:
            tags = tuple(f"activations/{n}" for n in activations)
            sink.write(jobs.histograms(tags, stats.hist_stats_many(list(activations.values())), 100))
    return run.path


def curve(steps, fn) -> list[tuple[int, float]]:
    return [(s, float(fn(s))) for s in steps]


def healthy_curves(last: int = 400) -> dict[str, list[tuple[int, float]]]:
    """A run that learns well: loss from 2.3 towards 0.05, update ratio 1e-3, steady train-val gap."""
    steps = range(1, last + 1)
    evals = range(40, last + 1, 40)
    ten = range(10, last + 1, 10)
    return {
        "train/loss": curve(steps, lambda s: 0.05 + 2.25 * math.exp(-s / 60) * (1 + 0.05 * math.sin(s))),
        "train/lr": curve(steps, lambda s: 1e-3),
        "train/grad_norm": curve(ten, lambda s: 1.0 * math.exp(-s / 300)),
        "layers/update_ratio/_all": curve(ten, lambda s: 1e-3),
        "layers/grad_norm/features.1.weight": curve(ten, lambda s: 0.8),
        "layers/grad_norm/head.weight": curve(ten, lambda s: 1.0),
        "train/eval_loss": curve(evals, lambda s: 0.03 + 2.0 * math.exp(-s / 60)),
        "val/loss": curve(evals, lambda s: 0.08 + 2.0 * math.exp(-s / 60)),
        "best/val/loss": curve(evals, lambda s: 0.08 + 2.0 * math.exp(-s / 60)),
        "perf/data_wait_share": curve(ten, lambda s: 0.04),
    }
