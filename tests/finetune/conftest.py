"""Shared fixtures: a small digits run on classes 0-4 and the few-shot target task.

The tiny random BERT (`tiny_bert`) and the synthetic sentiment files (`sentiment`) live in
tests/conftest.py: export and serve tests train a text run on them too."""

import shutil

import pytest

import zerotune
from zerotune.config import load_config

PARENT = ["data.name=digits", "data.classes=[0,1,2,3,4]", "model.name=cnn", "model.channels=[8,16]", "model.dense=32",
          "model.batch_norm=true", "train.epochs=4", "train.batch_size=32", "train.threads=1",
          "train.deterministic=true", "log.progress=false", "log.graph=false"]
TARGET = ["data.name=digits", "data.classes=[5,6,7,8,9]", "data.train_per_class=20", "train.epochs=6",
          "train.batch_size=20", "train.threads=1", "train.deterministic=true", "optim.lr=1e-2",
          "log.progress=false", "log.graph=false", "log.embeddings=false", "log.images=false"]


@pytest.fixture(scope="session")
def parent_run(tmp_path_factory):
    """A CNN trained on digits 0-4 (a few seconds)."""
    root = tmp_path_factory.mktemp("parent")
    return zerotune.train(load_config(None, PARENT + [f"log.dir={root}", "log.name=digits04"])).run_dir


@pytest.fixture
def target():
    """Settings of the few-shot target task: digits 5-9, 20 training images per class."""
    return list(TARGET)


@pytest.fixture
def copy_of(tmp_path):
    def copy(src, name):
        return shutil.copytree(src, tmp_path / name)

    return copy
