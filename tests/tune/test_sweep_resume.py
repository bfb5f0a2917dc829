"""A sweep killed with SIGKILL (main process and workers) continues with `zerotune sweep --resume`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .sweep_util import RECIPE, sets

from zerotune.run.files import RunDir, SweepDir
from zerotune.tune.sweep import read_plan, run_sweep
from zerotune.tune.sweep_study import load_study

SRC = Path(__file__).resolve().parents[2] / "src"


def _wait_for(path: Path, proc: subprocess.Popen, limit_s: float = 300) -> None:
    end = time.monotonic() + limit_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)


def test_a_killed_sweep_resumes_and_reruns_the_interrupted_trial(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "zerotune", "sweep", RECIPE, "--param", "optim.lr=loguniform:1e-3:3e-2",
           "--trials", "2", "--runs-dir", str(tmp_path), "--name", "k", *sets("train.epochs=40")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for(tmp_path / "k" / "trial-001" / "config.yaml", proc)  # trial 0 done, trial 1 training
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    sweep = SweepDir(tmp_path / "k")
    plan = read_plan(sweep.path)
    assert [t.state.name for t in load_study(plan, sweep.study).get_trials()] == ["COMPLETE", "RUNNING"]

    lines = []
    summary = run_sweep(sweep.path, out=lines.append)
    assert lines[0] == "trial 1 was interrupted: marked FAIL, its parameters queued to run again"
    assert [r.state for r in summary.rows] == ["COMPLETE", "INTERRUPTED", "COMPLETE"]
    trials = load_study(plan, sweep.study).get_trials()
    assert trials[2].params == trials[1].params and trials[2].user_attrs["rerun_of"] == 1
    assert (sweep.path / "trial-001").is_dir()  # the interrupted attempt is kept, not overwritten
    assert RunDir(sweep.path / "trial-002").metrics.is_file()
    assert summary.best.number in (0, 2) and sweep.best_recipe.is_file()
