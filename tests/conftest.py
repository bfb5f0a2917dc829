import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests never reach a model or data hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def quiet(*overrides: str) -> list[str]:
    """Overrides that keep a test run silent."""
    return ["log.progress=false", *overrides]


# -- tiny trained runs shared by tests/export and tests/serve (trained once per session) ------

RECIPES = ROOT / "recipes"
_SMALL_CNN = ["model.channels=[8, 16]", "model.dense=32", "train.epochs=3", "data.augment.rotate_degrees=0",
              "data.augment.shift=0"]


def _train_once(root: Path, recipe: str, name: str, overrides: list[str]) -> Path:
    if (root / name / "metrics.json").exists():
        return root / name
    import zerotune
    from zerotune.config import load_config

    cfg = load_config(RECIPES / recipe, [*overrides, "log.progress=false", "log.tensorboard=false",
                                         f"log.dir={root}", f"log.name={name}"])
    return zerotune.train(cfg).run_dir


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "zerotune-runs"


@pytest.fixture(scope="session")
def cnn_run(runs_root) -> Path:
    """A small digits CNN with batch norm: conv 8-16, dense 32, 3 epochs, no augmentation."""
    return _train_once(runs_root, "digits_cnn.toml", "cnn", _SMALL_CNN)


@pytest.fixture(scope="session")
def mlp_run(runs_root) -> Path:
    """The digits MLP recipe (Linear-heavy: 64-256-128-10), 4 epochs."""
    return _train_once(runs_root, "digits_mlp.toml", "mlp", ["train.epochs=4"])


@pytest.fixture(scope="session")
def tabular_run(runs_root) -> Path:
    """Softmax regression on breast_cancer: one Linear layer on 30 standardised features."""
    return _train_once(runs_root, "breast_cancer_softmax.toml", "tabular", ["train.epochs=10"])


@pytest.fixture(scope="session")
def regression_run(runs_root) -> Path:
    """Least-squares linear regression on diabetes, 5 epochs."""
    return _train_once(runs_root, "diabetes_linear.yaml", "regression", ["train.epochs=5"])
