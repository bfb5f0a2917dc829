"""The results the recipes promise, with their fixed seeds."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import zerotune
from zerotune.config import load_config
from zerotune.data import build_data

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _train(recipe, runs_dir, *overrides):
    # no TensorBoard views: nothing here reads them, and they leave the training's generators alone
    # (tests/track covers them); the CNN's figures and histograms were a third of its time
    return zerotune.train(load_config(RECIPES / recipe, ["log.progress=false", "log.tensorboard=false",
                                                         f"log.dir={runs_dir}", *overrides]))


def test_digits_cnn_reaches_98_5_percent(runs_dir):
    result = _train("digits_cnn.toml", runs_dir)
    assert result.metrics["test"]["accuracy"] >= 0.985
    assert result.metrics["test"]["n"] == 360


def test_digits_mlp_reaches_97_percent(runs_dir):
    assert _train("digits_mlp.toml", runs_dir).metrics["test"]["accuracy"] >= 0.97


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_softmax_regression_reaches_93_percent(name, runs_dir):
    assert _train(f"{name}_softmax.toml", runs_dir).metrics["test"]["accuracy"] >= 0.93


def test_diabetes_linear_regression_matches_scikit_learn(runs_dir):
    result = _train("diabetes_linear.yaml", runs_dir)
    cfg = load_config(RECIPES / "diabetes_linear.yaml")
    data = build_data(cfg.data)
    y_train = data.train.y.numpy() * data.meta.y_std + data.meta.y_mean
    y_test = data.test.y.numpy() * data.meta.y_std + data.meta.y_mean
    sk = LinearRegression().fit(data.train.x.numpy(), y_train)
    sk_r2 = sk.score(data.test.x.numpy(), y_test)
    assert abs(result.metrics["test"]["r2"] - sk_r2) <= 0.01
    assert np.isclose(result.metrics["test"]["mse"], np.mean((sk.predict(data.test.x.numpy()) - y_test) ** 2), rtol=0.02)
