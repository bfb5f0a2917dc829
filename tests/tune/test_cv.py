"""`zerotune cv`: one run directory per fold, the mean ± std of their metrics, the test split held out."""

import json

import numpy as np
import pytest

from zerotune.config import load_config
from zerotune.data import build_data
from zerotune.errors import UserError
from zerotune.pipeline.cv import cross_validate
from zerotune.pipeline.train import evaluate, prepare

IRIS = ["data.name=iris", "model.name=mlp", "model.hidden=[16]", "train.epochs=3", "train.threads=1",
        "log.progress=false", "log.images=false", "log.embeddings=false", "log.graph=false"]


def test_three_folds_make_three_runs_and_their_mean_and_std(runs_dir, read_events):
    result = cross_validate(load_config(None, IRIS + [f"log.dir={runs_dir}"]), 3, name="iris-cv")
    assert result.path == runs_dir / "iris-cv" and [p.name for p in result.folds] == ["fold-0", "fold-1", "fold-2"]
    saved = json.loads((result.path / "cv.json").read_text())
    assert saved == json.loads(json.dumps(result.summary)) and saved["folds"] == 3
    per_fold = [json.loads((p / "metrics.json").read_text()) for p in result.folds]
    for key, split, name in (("val/accuracy", "val", "accuracy"), ("test/f1_macro", "test", "f1_macro")):
        values = [m[split][name] for m in per_fold]
        assert saved["metrics"][key]["folds"] == pytest.approx(values)
        assert saved["metrics"][key]["mean"] == pytest.approx(np.mean(values))
        assert saved["metrics"][key]["std"] == pytest.approx(np.std(values))
    best = [m["training"]["best"] for m in per_fold]
    assert saved["metrics"]["best val/loss"]["mean"] == pytest.approx(np.mean(best))
    for fold in result.folds:  # side by side in TensorBoard, and each fold rebuilds its own split alone
        assert read_events(fold).Tags()["scalars"]
        assert evaluate(fold, "val")["accuracy"] == pytest.approx(json.loads((fold / "metrics.json").read_text())["val"]["accuracy"])


def test_folds_partition_train_and_val_and_keep_the_test_split():
    plain = build_data(load_config(None, ["data.name=iris", "data.normalize=none"]).data)
    folds = [build_data(load_config(None, ["data.name=iris", "data.normalize=none", "data.cv_folds=3",
                                           f"data.cv_fold={k}"]).data) for k in range(3)]
    vals = np.concatenate([f.val.x.numpy() for f in folds])
    pool = np.concatenate([plain.train.x.numpy(), plain.val.x.numpy()])
    assert sorted(map(tuple, vals)) == sorted(map(tuple, pool))  # each train+val example validates once
    assert all(np.array_equal(f.test.x.numpy(), plain.test.x.numpy()) for f in folds)
    counts = np.array([np.bincount(f.val.y.numpy()) for f in folds])  # stratified: 40 of each class in 3 folds
    assert counts.sum(0).tolist() == [40, 40, 40] and (counts.max(0) - counts.min(0) <= 1).all()


def test_regression_uses_plain_k_fold(runs_dir):
    result = cross_validate(load_config(None, ["data.name=diabetes", "model.name=linear_regression", "train.epochs=1",
                                               "log.progress=false", "log.tensorboard=false", f"log.dir={runs_dir}"]), 2)
    assert {"val/r2", "test/mse", "best val/loss"} <= set(result.summary["metrics"]) and len(result.folds) == 2


def test_bad_fold_counts_are_one_line_and_write_nothing(tmp_path, cli):
    for folds, needle in (("1", "--folds must be at least 2"), ("41", "smallest class has 40")):
        proc = cli("cv", "--folds", folds, "--set", "data.name=iris", "--set", "model.name=mlp", "--runs-dir", str(tmp_path))
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
        assert not proc.warnings, proc.warnings  # in this process, recorded instead of printed on stderr
    assert not any(tmp_path.iterdir())
    with pytest.raises(UserError, match="'corpus' is not one"):
        cross_validate(load_config(None, ["data.name=corpus"]), 3)
    with pytest.raises(UserError, match="data.class_fraction applies to in-memory data sets"):
        prepare(load_config(None, ["data.name=corpus", "model.name=gpt", "data.class_fraction={0: 0.5}"]))


def test_piped_cv_prints_one_line_per_fold_and_the_summary(tmp_path, cli):
    progress = [a for a in IRIS if a != "log.progress=false"]  # stdout is no terminal here, as in a pipe
    out = cli("cv", "--folds", "3", "--runs-dir", str(tmp_path), *(x for a in progress for x in ("--set", a)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["fold-0", "fold-1", "fold-2"]
    assert all("best val/loss" in line and "test/accuracy" in line for line in lines[:3])
    assert not any(line.startswith("step ") or "to step" in line for line in lines)  # no per-evaluation lines
    assert lines[3].startswith("metric") and lines[-1].startswith("folds: ") and len(lines) < 15
