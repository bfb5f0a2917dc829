"""How a trial ends: pruned by `--prune` (its run directory stays valid), or failed on its own (a diverged loss)."""

from __future__ import annotations

import optuna
import pytest
from .sweep_util import RECIPE, TINY, sets

from zerotune.cli.main import main
from zerotune.pipeline.train import evaluate
from zerotune.run.files import RunDir, SweepDir, read_json
from zerotune.track.events import read_run_events
from zerotune.train.callbacks import TrainState
from zerotune.tune.sweep import SweepPlan, read_plan, run_sweep
from zerotune.tune.sweep_study import load_study, make_pruner
from zerotune.tune.sweep_trial import ReportToTrial


def test_a_hopeless_trial_is_pruned_and_stays_a_run(tmp_path, capsys):
    # Two good trials complete (the median rule waits for two); then a rate of 1e-6 learns nothing.
    code = main(["sweep", RECIPE, "--param", "optim.lr=loguniform:1e-2:2e-2", "--trials", "2", "--prune",
                 "--runs-dir", str(tmp_path), "--name", "p", *sets("train.epochs=4")])
    assert code == 0, capsys.readouterr().err
    sweep = SweepDir(tmp_path / "p")
    plan = read_plan(sweep.path)
    assert plan.pruner == "median"
    load_study(plan, sweep.study).enqueue_trial({"optim.lr": 1e-6})
    with pytest.warns(UserWarning, match="is out of range"):
        summary = run_sweep(sweep.path, trials=3, out=lambda line: None)
    assert [r.state for r in summary.rows] == ["COMPLETE", "COMPLETE", "PRUNED"]
    pruned = summary.rows[2]
    assert pruned.steps == 10  # two evaluations of 5 steps, of the 20 the run had
    run = RunDir(pruned.run)
    metrics = read_json(run.metrics)
    assert metrics["training"]["stop_reason"].startswith("pruned by the sweep at evaluation 2 (val/loss ")
    assert run.checkpoint("best").is_dir() and run.checkpoint("last").is_dir()
    assert read_run_events(run.path).finished
    assert evaluate(run.path, split="val")["n"] > 0
    assert summary.best.number in (0, 1)


def _state(value: float, evals: int) -> TrainState:
    return TrainState(model=None, total_steps=10, steps_per_epoch=1, epochs=10, metrics={"val/loss": value},
                      num_evals=evals, monitor="val/loss")


class FakeTrial:
    def __init__(self, prune_at: int):
        self.reported, self.prune_at = [], prune_at

    def report(self, value, step):
        self.reported.append((step, value))

    def should_prune(self):
        return self.reported[-1][0] >= self.prune_at


def test_report_callback_reports_each_evaluation_and_requests_a_stop():
    trial = FakeTrial(prune_at=3)
    cb = ReportToTrial(trial)
    states = [_state(v, n) for n, v in enumerate([2.0, 1.5, 1.4], start=1)]
    for s in states:
        cb.on_eval_end(s)
    assert trial.reported == [(1, 2.0), (2, 1.5), (3, 1.4)]
    assert not states[1].stop_requested and states[2].stop_requested and cb.pruned
    assert states[2].stop_reason == "pruned by the sweep at evaluation 3 (val/loss 1.4)"


def test_pruners_by_name():
    plan = SweepPlan(base={}, params=[], trials=4, metric="val/loss", direction="minimize")
    assert isinstance(make_pruner(plan), optuna.pruners.NopPruner)
    plan.pruner = "median"
    assert isinstance(make_pruner(plan), optuna.pruners.MedianPruner)
    plan.pruner = "halving"
    assert isinstance(make_pruner(plan), optuna.pruners.SuccessiveHalvingPruner)
    assert TINY  # the same quick trials as the other sweep tests


def test_a_diverged_trial_fails_counts_and_the_sweep_goes_on(tmp_path, capsys):
    code = main(["sweep", RECIPE, "--param", "optim.lr=choice:10.0", "--trials", "1", "--runs-dir", str(tmp_path),
                 "--name", "d", *sets("optim.name=sgd", "model.batch_norm=false", "train.epochs=2")])
    out = capsys.readouterr().out
    assert code == 0
    assert "trial 0 FAIL: optim.lr=10  (training loss " in out and "no trial completed: no best recipe" in out
    trial = load_study(read_plan(tmp_path / "d"), SweepDir(tmp_path / "d").study).get_trials()[0]
    assert trial.state.name == "FAIL" and "lower optim.lr" in trial.user_attrs["error"]
    assert not SweepDir(tmp_path / "d").best_recipe.exists()
