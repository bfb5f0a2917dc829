"""`zerotune sweep --jobs 2`: two worker processes share the study in study.db; one sweep process at a time."""

from __future__ import annotations

import os

import pytest
from .sweep_util import RECIPE, TINY

from zerotune.errors import UserError
from zerotune.run.files import RunDir, SweepDir
from zerotune.tune.sweep import SweepOptions, read_plan, run_sweep, start_sweep, sweep_lock
from zerotune.tune.sweep_study import load_study


def test_two_workers_share_the_study_and_spend_the_budget_exactly(tmp_path):
    opts = SweepOptions(RECIPE, ["optim.lr=loguniform:1e-3:3e-2"], 3, [*TINY, "train.epochs=3"], name="j",
                        runs_dir=str(tmp_path))
    summary = start_sweep(opts, jobs=2, out=lambda line: None)
    assert [r.number for r in summary.rows] == [0, 1, 2]
    assert [r.state for r in summary.rows] == ["COMPLETE"] * 3
    trials = load_study(read_plan(tmp_path / "j"), SweepDir(tmp_path / "j").study).get_trials()
    pids = {t.user_attrs["pid"] for t in trials}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # run by the worker processes
    assert len({t.params["optim.lr"] for t in trials}) == 3  # workers draw with their own seeds
    for r in summary.rows:
        assert RunDir(r.run).metrics.is_file()
        assert RunDir(r.run).path.parent == tmp_path / "j"
    for shared in (False, True):  # as a sweep process, or a worker outliving it, holds it
        with sweep_lock(SweepDir(tmp_path / "j"), shared=shared):
            with pytest.raises(UserError, match="is in use by another process"):
                run_sweep(tmp_path / "j", trials=4)
    assert len(run_sweep(tmp_path / "j", out=lambda line: None).rows) == 3  # free again: nothing left to run
