"""Tiny trained runs shared by the export tests (trained once per session, in seconds)."""

from pathlib import Path

import pytest

import zerotune
from zerotune.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
QUIET = ["log.progress=false", "log.tensorboard=false"]
# The same in tests/serve/conftest.py, so a session running both trains each run once.
CNN = ["model.channels=[8, 16]", "model.dense=32", "train.epochs=3", "data.augment.rotate_degrees=0",
       "data.augment.shift=0"]
TABULAR = ["train.epochs=10"]


def train_run(root: Path, recipe: str, name: str, overrides: list[str]) -> Path:
    """Train once per test session: tests/export and tests/serve share runs of the same name."""
    if (root / name / "metrics.json").exists():
        return root / name
    cfg = load_config(RECIPES / recipe, [*overrides, *QUIET, f"log.dir={root}", f"log.name={name}"])
    return zerotune.train(cfg).run_dir


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "zerotune-runs"


@pytest.fixture(scope="session")
def cnn_run(runs_root) -> Path:
    """A small digits CNN with batch norm: conv 8-16, dense 32, 3 epochs, no augmentation."""
    return train_run(runs_root, "digits_cnn.toml", "cnn", CNN)


@pytest.fixture(scope="session")
def mlp_run(runs_root) -> Path:
    """The digits MLP recipe (Linear-heavy: 64-256-128-10), 4 epochs."""
    return train_run(runs_root, "digits_mlp.toml", "mlp", ["train.epochs=4"])


@pytest.fixture(scope="session")
def tabular_run(runs_root) -> Path:
    """Softmax regression on breast_cancer: one Linear layer on 30 standardised features."""
    return train_run(runs_root, "breast_cancer_softmax.toml", "tabular", TABULAR)
