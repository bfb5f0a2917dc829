"""End to end: the `scratch` subcommand as the main CLI calls it, and its run directories."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from zerotune.errors import UserError
from zerotune.cli import scratch as cli


def parse(*argv):
    return cli.build_parser().parse_args(["scratch", *argv])


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_linreg_end_to_end(tmp_path, capsys):
    args = parse("linreg", "--data", "diabetes", "--runs-dir", str(tmp_path), "--name", "lin")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "closed form" in out and "relative parameter error" in out and str(tmp_path) in out
    assert out.rstrip().endswith(f"view: zerotune board {tmp_path}")  # the product's own board command
    run = tmp_path / "lin"
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "ok" and m["converged"]
    assert m["rel_param_error"] < 1e-6
    assert m["final_loss"] == pytest.approx(m["closed_form_loss"], rel=1e-12)
    assert m["cond_raw"] > 300 * m["cond_standardized"]
    assert m["iters_to_1e-6_raw"] is None and m["iters_to_1e-6_standardized"] > 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["command"] == "scratch linreg" and cfg["gd"]["lr"] == 0.1
    assert cfg["data"]["standardize"] is True
    meta = json.loads((run / "meta.json").read_text())
    assert meta["n_train"] == 331 and len(meta["standardize_mean"]) == 10
    tags = events(run).Tags()
    assert {"loss/train", "params/w/bmi", "params/b", "grad_norm/total", "lr",
            "conditioning/cond_raw"} <= set(tags["scalars"])
    assert "conditioning/raw_vs_standardized" in tags["images"]
    losses = [e.value for e in events(run).Scalars("loss/train")]
    assert len(losses) == m["iterations"] + 1  # every iteration, starting point included
    for label in ("raw", "standardized"):
        child = events(run / "scaling" / label)
        assert "scaling/relative_excess_loss" in child.Tags()["scalars"]


def test_linreg_one_feature_logs_contour_image(tmp_path):
    args = parse("linreg", "--features", "bmi", "--no-compare", "--loss-scale", "1",
                 "--runs-dir", str(tmp_path), "--name", "bmi")
    assert args.func(args) == 0
    acc = events(tmp_path / "bmi")
    img = acc.Images("loss_surface/gradient_descent_path")[-1]
    assert img.width > 300 and img.height > 200
    assert not (tmp_path / "bmi" / "scaling").exists()
    m = json.loads((tmp_path / "bmi" / "metrics.json").read_text())
    assert m["loss_scale"] == 1.0 and m["rel_param_error"] < 1e-6


def test_logreg_end_to_end(tmp_path, capsys):
    args = parse("logreg", "--data", "iris", "--runs-dir", str(tmp_path), "--name", "lr")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "scikit-learn" in out and out.rstrip().endswith(f"view: zerotune board {tmp_path}")
    m = json.loads((tmp_path / "lr" / "metrics.json").read_text())
    assert m["model"] == "softmax" and m["n_classes"] == 3
    assert abs(m["test_accuracy_gap_points"]) <= 1.0
    assert {"accuracy/test", "accuracy/train", "loss/train"} <= set(
        events(tmp_path / "lr").Tags()["scalars"])


def test_mlp_end_to_end(tmp_path, capsys):
    args = parse("mlp", "--data", "digits", "--iters", "3", "--hidden", "32,16",
                 "--activation", "tanh", "--runs-dir", str(tmp_path), "--name", "m")
    assert args.func(args) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"view: zerotune board {tmp_path}")
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["sizes"] == [64, 32, 16, 10] and m["init"] == "xavier" and m["iterations"] == 3
    assert m["test_accuracy"] > 0.8
    tags = events(tmp_path / "m").Tags()
    assert {"loss/batch", "accuracy/test", "param_norm/W1", "grad_norm/W3"} <= set(tags["scalars"])
    assert "weights/W1" in tags["histograms"]
    params = json.loads((tmp_path / "m" / "params.json").read_text())
    assert np.array(params["W2"]).shape == (32, 16)


def test_csv_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    y = 3 * x[:, 0] - 2 * x[:, 1] + 1
    path = tmp_path / "lin.csv"
    path.write_text("u,v,out\n" + "\n".join(f"{a},{b},{c}" for (a, b), c in zip(x, y)))
    args = parse("linreg", "--data", str(path), "--target", "out", "--runs-dir", str(tmp_path),
                 "--name", "csv")
    assert args.func(args) == 0
    m = json.loads((tmp_path / "csv" / "metrics.json").read_text())
    assert m["test_rmse"] < 1e-6


def test_divergence_exits_2_and_records_failure(tmp_path, capsys):
    code = cli.main(["linreg", "--no-standardize", "--runs-dir", str(tmp_path), "--name", "boom"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gradient descent diverged") and "smaller" in err
    assert err.count("\n") == 1
    m = json.loads((tmp_path / "boom" / "metrics.json").read_text())
    assert m["status"] == "failed" and "diverged" in m["error"]


def test_bad_input_creates_no_run_dir(tmp_path, capsys):
    assert cli.main(["logreg", "--data", "diabetes", "--runs-dir", str(tmp_path)]) == 2
    assert "continuous" in capsys.readouterr().err
    assert cli.main(["mlp", "--data", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    assert cli.main(["linreg", "--lr", "-1", "--runs-dir", str(tmp_path)]) == 2
    assert "learning rate" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_run_name_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    args = parse("logreg", "--runs-dir", str(tmp_path), "--name", "taken", "--iters", "1")
    with pytest.raises(UserError, match="already exists"):
        args.func(args)


def test_default_run_name(tmp_path):
    args = parse("logreg", "--iters", "5", "--runs-dir", str(tmp_path))
    args.func(args)
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("scratch-logreg-")


def test_python_dash_m_entry_point(tmp_path):
    src = str(Path(cli.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "zerotune.scratch", "scratch", "mlp", "--activation", "softmax"],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
