"""The CLI end to end: train, eval, listings, and one-line errors for bad input.

The commands run in this process (`cli`); two tests run the real entry point in a process of its own.
"""

import json
import os
import subprocess
import sys

import pytest

from zerotune.cli.main import main


def zt_process(*args):
    """Run the real console entry point in a subprocess."""
    return subprocess.run([sys.executable, "-m", "zerotune", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200"})


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not getattr(proc, "warnings", None), proc.warnings  # in this process, recorded instead of printed
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("cli")
    proc = cli("train", "--runs-dir", str(root), "--name", "iris", "--no-progress",
               "--set", "data.name=iris", "--set", "model.name=logistic_regression",
               "--set", "train.epochs=30", "--set", "optim.lr=0.05")
    assert proc.returncode == 0, proc.stderr
    return root / "iris", proc.stdout


def test_train_leaves_a_self_contained_run_directory(trained):
    run, out = trained
    assert f"run: {run}" in out and "test (best checkpoint): accuracy" in out
    for f in ("config.yaml", "meta.json", "env.json", "metrics.json", "checkpoints/best/model.safetensors",
              "checkpoints/last/model.safetensors", "checkpoints/last/optimizer.safetensors",
              "checkpoints/last/state.json"):
        assert (run / f).is_file(), f
    assert list(run.glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9 and metrics["training"]["steps"] == 60
    assert not list(run.rglob("*.tmp*"))  # atomic writes leave no temporary files


def test_eval_prints_every_classification_metric(trained, capsys):
    run, _ = trained
    assert main(["eval", str(run), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["split"] == "test" and m["n"] == 30
    assert set(m) >= {"accuracy", "precision_macro", "recall_macro", "f1_macro", "per_class", "confusion_matrix", "roc_auc"}
    assert sum(map(sum, m["confusion_matrix"])) == 30 and 0.9 <= m["roc_auc"] <= 1
    assert set(m["per_class"]) == {"setosa", "versicolor", "virginica"}
    assert main(["eval", str(run), "--split", "val", "--checkpoint", "last"]) == 0
    text = capsys.readouterr().out
    assert "split=val" in text and "confusion matrix" in text and "virginica" in text


def test_eval_regression(tmp_path, capsys):
    assert main(["train", "--runs-dir", str(tmp_path), "--name", "d", "--no-progress", "--set", "data.name=diabetes",
                 "--set", "model.name=linear_regression", "--set", "train.epochs=5"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "d"), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert set(m) >= {"mse", "mae", "r2", "rmse"} and m["mse"] > 100  # original units, not standardised


def test_models_and_datasets_are_listed(cli):
    out = cli("models").stdout
    for name in ("linear_regression", "logistic_regression", "mlp", "cnn", "resnet"):
        assert name in out
    out = cli("datasets").stdout
    for name in ("digits", "iris", "wine", "breast_cancer", "diabetes", "mnist", "cifar10", "csv", "image_folder"):
        assert name in out


def test_existing_run_directory_is_not_touched(trained, cli):
    run, _ = trained
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    proc = cli("train", "--runs-dir", str(run.parent), "--name", "iris", "--set", "data.name=iris",
               "--set", "model.name=logistic_regression")
    assert_one_line_error(proc, "already exists")
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


@pytest.mark.parametrize("args, needles", [
    (["--set", "data.name=mnist_typo"], ["unknown data set 'mnist_typo'", "available: digits"]),
    (["--set", "model.name=alexnet"], ["unknown model 'alexnet'", "available: cnn"]),
    (["--set", "train.epochs=many"], ["train.epochs", "valid integer"]),
    (["--set", "data.name=iris"], ["model 'cnn' needs image input", "(4,)"]),
    (["--set", "model.name=mlp", "--set", "model.hidden=[8]", "--set", "data.name=csv", "--set", "data.path=/nonexistent.csv"],
     ["/nonexistent.csv"]),
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, cli, args, needles):
    proc = cli("train", "--runs-dir", str(tmp_path), *args)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path).exists() or not any(tmp_path.iterdir())  # nothing created


def test_corrupt_data_file_is_reported(tmp_path, cli):
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n1,2,x\n3,oops\n")
    proc = cli("train", "--runs-dir", str(tmp_path / "runs"), "--set", "data.name=csv", "--set", f"data.path={csv}",
               "--set", "model.name=mlp")
    assert_one_line_error(proc, str(csv))
    idx = tmp_path / "mnist"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    proc = cli("train", "--runs-dir", str(tmp_path / "runs"), "--set", "data.name=mnist", "--set", f"data.path={idx}")
    assert_one_line_error(proc)


def test_corrupt_checkpoint_is_reported(trained, tmp_path, saved_before_checksums, cli):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained[0], run)
    (run / "checkpoints" / "best" / "model.safetensors").write_bytes(b"not a safetensors file")
    assert_one_line_error(cli("eval", str(run)), "model.safetensors is damaged", "when it was saved")
    saved_before_checksums(run / "checkpoints" / "best")  # no checksums to check against: read, and refused
    assert_one_line_error(cli("eval", str(run)), "model.safetensors", "not a valid safetensors file")
    assert_one_line_error(cli("eval", str(tmp_path / "nothing")), "does not exist")


def test_the_real_process_reports_bad_input_in_one_line(tmp_path):
    proc = zt_process("train", "--runs-dir", str(tmp_path), "--set", "model.name=alexnet")
    assert_one_line_error(proc, "unknown model 'alexnet'", "available: cnn")
    assert not any(tmp_path.iterdir())


def test_debug_shows_the_traceback(tmp_path):
    proc = zt_process("--debug", "train", "--runs-dir", str(tmp_path), "--set", "model.name=alexnet")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_train_with_a_live_board(tmp_path, cli):
    proc = cli("train", "--runs-dir", str(tmp_path), "--name", "live", "--board", "--port", "0", "--no-progress",
               "--set", "data.name=iris", "--set", "model.name=mlp", "--set", "train.epochs=2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("TensorBoard: http://127.0.0.1:")
    assert "run: " in proc.stdout and (tmp_path / "live" / "metrics.json").exists()
