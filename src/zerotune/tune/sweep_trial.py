"""One trial of a sweep: a normal training run in ``<sweep>/trial-NNN`` whose evaluations are reported to
Optuna, stopped cleanly when the pruner says so.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from ..errors import UserError
from ..run.files import SweepDir
from ..train.callbacks import Callback, TrainState
from .sweep_space import with_values
from .sweep_study import give_back


class ReportToTrial(Callback):
    """Report each evaluation's monitored value to an Optuna trial; request a stop when it should be pruned.

    The step Optuna sees is the evaluation's number (1, 2, ...), not the optimizer step, so trials with
    different batch sizes are compared at the same point of training. A pruned run stops as an
    early-stopped one does: its last checkpoint, metrics and events are written, and it stays a valid run.
    """

    def __init__(self, trial):
        self.trial = trial
        self.pruned = False

    def on_eval_end(self, state: TrainState) -> None:
        value = state.metrics.get(state.monitor)
        if value is None or math.isnan(value):
            return
        self.trial.report(value, state.num_evals)
        if self.trial.should_prune():
            self.pruned = True
            state.stop_requested = True
            state.stop_reason = (f"pruned by the sweep at evaluation {state.num_evals} "
                                 f"({state.monitor} {value:.4g})")


def trial_config(plan, values: dict, sweep_dir: Path, number: int, jobs: int):
    """The Config of trial `number`: the plan's base with the trial's values, in the sweep directory.

    With several worker processes, a trial with no ``train.threads`` of its own uses one thread.
    """
    from ..config import build_config

    fixed = {"log.dir": str(Path(sweep_dir).resolve()), "log.name": SweepDir.trial_name(number),
             "log.progress": False}
    if jobs > 1 and plan.base["train"].get("threads") is None:
        fixed["train.threads"] = 1
    return build_config(with_values(plan.base, {**values, **fixed}))


def run_trial(study, trial, plan, sweep_dir: Path, jobs: int) -> str:
    """Train trial `trial` and tell the study how it ended; returns a line saying so.

    A run that fails on its own (a diverged loss, a model that does not fit the values) is a failed
    trial and the sweep goes on; one stopped by anything else (Ctrl-C, a bug) is given back to run
    again, and the exception goes on up.
    """
    from optuna.trial import TrialState

    from ..pipeline.train import train

    values = {p.key: p.suggest(trial) for p in plan.params}
    trial.set_user_attr("run", SweepDir.trial_name(trial.number))
    trial.set_user_attr("pid", os.getpid())  # which worker process ran it
    reporter = ReportToTrial(trial)
    start = time.perf_counter()
    try:
        result = train(trial_config(plan, values, sweep_dir, trial.number, jobs), callbacks=[reporter])
    except UserError as e:
        trial.set_user_attr("error", str(e))
        study.tell(trial, state=TrialState.FAIL)
        return _line(trial.number, "FAIL", values, f"({e})")
    except BaseException:
        give_back(study, trial.number, trial.params)
        raise
    trial.set_user_attr("steps", result.steps)
    trial.set_user_attr("val", {k: v for k, v in result.metrics["val"].items() if isinstance(v, (int, float))})
    best = result.metrics["training"]["best"]
    seconds = f"{time.perf_counter() - start:.1f}s"
    if reporter.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        return _line(trial.number, "PRUNED", values, f"after {result.steps} steps, {seconds}")
    if best is None or not math.isfinite(best):
        trial.set_user_attr("error", f"{plan.metric} was never measured")
        study.tell(trial, state=TrialState.FAIL)
        return _line(trial.number, "FAIL", values, f"({plan.metric} was never measured)")
    study.tell(trial, best)
    return _line(trial.number, "COMPLETE", values, f"{plan.metric} {best:.4g}, {result.steps} steps, {seconds}")


def _line(number: int, state: str, values: dict, how: str) -> str:
    shown = "  ".join(f"{k}={_fmt(v)}" for k, v in values.items())
    return f"trial {number} {state}: {shown}  {how}"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
