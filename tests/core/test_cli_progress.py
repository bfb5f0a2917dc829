"""Outside a terminal, `train` prints one plain, uncut line per evaluation, and an uncut result."""

import os
import subprocess
import sys

LONG_NAME = "a-run-name-long-enough-that-any-line-holding-it-would-be-cut-at-eighty-columns-" + "x" * 40


def zt_piped(*args):
    """The console entry point with stdout a pipe, as under nohup, CI, Slurm or `> log`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_INTERACTIVE")}
    return subprocess.run([sys.executable, "-m", "zerotune", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=300, env=env)


def test_train_prints_one_uncut_line_per_evaluation(tmp_path):
    proc = zt_piped("train", "--runs-dir", str(tmp_path), "--name", LONG_NAME, "--set", "data.name=iris",
                    "--set", "model.name=logistic_regression", "--set", "train.epochs=4",
                    "--set", "train.monitor=val/accuracy")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    evals = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in evals] == ["2/8", "4/8", "6/8", "8/8"]  # 2 steps per epoch, 1 eval each
    for line in evals:
        for needle in ("train/loss ", "val/loss ", "val/accuracy ", "best val/accuracy "):
            assert needle in line, line
    assert lines[0].startswith(f"{LONG_NAME}: to step 8"), lines[0]
    assert f"run: {tmp_path / LONG_NAME}" in lines
    assert any(line.startswith("test (best checkpoint): accuracy ") and "roc_auc " in line for line in lines)
    assert "\x1b" not in proc.stdout and "…" not in proc.stdout  # no terminal codes, nothing cut
