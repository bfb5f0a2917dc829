"""A small finished run that the tests of damaged, checksummed and unwritable run directories copy and break."""

import shutil

import pytest

from zerotune.cli.main import main

# Iris, a tiny MLP, one thread, deterministic: a run of a few seconds that resumes bit-exact.
IRIS = ["--set", "data.name=iris", "--set", "model.name=mlp", "--set", "model.hidden=[8]",
        "--set", "train.threads=1", "--set", "train.deterministic=true", "--no-progress"]


@pytest.fixture(scope="session")
def finished_iris_run(tmp_path_factory):
    """A finished 3-epoch iris run, trained once per session; tests break copies of it (`run`)."""
    root = tmp_path_factory.mktemp("finished-iris")
    assert main(["train", "--runs-dir", str(root), "--name", "iris", "--set", "train.epochs=3", *IRIS]) == 0
    return root / "iris"


@pytest.fixture
def run(finished_iris_run, tmp_path):
    """A copy of the finished iris run, this test's own to damage."""
    target = tmp_path / "iris"
    shutil.copytree(finished_iris_run, target)
    return target
