"""Small real training runs with every TensorBoard summary switched on, shared by the track tests.

Trained once per session (a few seconds each): two classification runs that differ in learning
rate (for comparison tables) and one regression run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Tiny but complete: every kind of summary fires at least twice.
CLS_OVERRIDES = [
    "data.name=digits", "data.train_per_class=15", "data.augment.rotate_degrees=10",
    "model.name=cnn", "model.channels=[8, 8]", "model.dense=16",
    "train.epochs=3", "train.batch_size=32", "train.threads=1",
    "log.progress=false", "log.histograms_every=5", "log.layer_stats_every=2", "log.activations=true",
    "log.embedding_samples=40", "log.grad_norm_every=1", "log.views_min_seconds=0",
]
REG_OVERRIDES = [
    "data.name=synthetic_regression", "data.n_samples=200", "data.n_features=5",
    "model.name=mlp", "model.hidden=[16]",
    "train.epochs=2", "train.batch_size=32", "train.threads=1",
    "log.progress=false", "log.histograms_every=4", "log.views_min_seconds=0",
]


def train_run(logdir: Path, name: str, overrides: list[str]) -> Path:
    from zerotune.pipeline.train import train
    from zerotune.config import load_config

    cfg = load_config(None, [*overrides, f"log.dir={logdir}", f"log.name={name}"])
    return train(cfg).run_dir


@pytest.fixture(scope="session")
def logdir(tmp_path_factory) -> Path:
    """A directory of three finished runs: cls-a, cls-b (other lr) and reg."""
    pytest.importorskip("tensorboard")  # the reading side and these tests' reader
    root = tmp_path_factory.mktemp("track_runs")
    train_run(root, "cls-a", CLS_OVERRIDES)
    train_run(root, "cls-b", [*CLS_OVERRIDES, "optim.lr=0.003"])
    train_run(root, "reg", REG_OVERRIDES)
    return root


@pytest.fixture
def train_cls():
    """``train_cls(logdir, name, *extra_overrides) -> run_dir`` with the classification settings."""
    return lambda logdir, name, *extra: train_run(logdir, name, [*CLS_OVERRIDES, *extra])


@pytest.fixture(scope="session")
def cls_run(logdir) -> Path:
    return logdir / "cls-a"


@pytest.fixture(scope="session")
def reg_run(logdir) -> Path:
    return logdir / "reg"


@pytest.fixture(scope="session")
def cls_events(cls_run, read_events):
    return read_events(cls_run)


@pytest.fixture(scope="session")
def reg_events(reg_run, read_events):
    return read_events(reg_run)
