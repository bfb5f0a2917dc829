"""The Optuna side of a sweep: its SQLite storage, sampler and pruner, and which trials count.

Several worker processes share one study through Optuna's RDB storage on SQLite; a long busy timeout
lets a writer wait for another's transaction instead of failing. A trial counts towards ``--trials``
once it is complete, pruned or failed on its own (a diverged loss); a trial cut short by a killed or
interrupted sweep is marked failed and ``interrupted``, and its parameters are queued to run again.
"""

from __future__ import annotations

from pathlib import Path

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "halving")
RERUN_OF = "rerun_of"  # user attribute of a queued trial: the number of the interrupted trial it runs again
SQLITE_TIMEOUT_S = 120


def storage(study_file: Path):
    """Optuna's RDB storage on the SQLite file `study_file` (created when missing)."""
    import optuna

    return optuna.storages.RDBStorage(f"sqlite:///{Path(study_file).resolve()}",
                                      engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})


def make_sampler(plan, worker: int = 0):
    """The plan's sampler; each worker process gets its own seed, so parallel workers do not draw alike."""
    import optuna

    seed = plan.seed + worker
    if plan.sampler == "grid":
        return _grid_sampler_class()({p.key: p.grid() for p in plan.params}, seed=seed)
    if plan.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Ten random trials before the model of good and bad trials is fitted, or a third of a small budget.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, plan.trials // 3)))


def _grid_sampler_class():
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler, without its `study.stop()` once the grid is spent: that call works only
        inside `study.optimize`, and here the budget ends the sweep (it is at most the grid's size)."""

        def after_trial(self, study, trial, state, values) -> None:
            pass

    return GridSampler


def make_pruner(plan):
    """No pruning, the median rule, or successive halving; a step is one evaluation of the trial's run.

    The median rule stops a trial whose best monitored value so far is worse than the median of the
    complete trials at the same evaluation, once two trials are complete, from its second evaluation on.
    Successive halving keeps the best third of the trials at evaluations 1, 3, 9, ...
    """
    import optuna

    if plan.pruner is None:
        return optuna.pruners.NopPruner()
    if plan.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)


def create_study(plan, study_file: Path):
    """A new study in `study_file`, with the plan's name and direction."""
    import optuna

    return optuna.create_study(storage=storage(study_file), study_name=plan.study_name, direction=plan.direction,
                               sampler=make_sampler(plan), pruner=make_pruner(plan))


def load_study(plan, study_file: Path, worker: int = 0):
    """The study of `plan` in `study_file`, with this worker's sampler."""
    import optuna

    return optuna.load_study(study_name=plan.study_name, storage=storage(study_file),
                             sampler=make_sampler(plan, worker), pruner=make_pruner(plan))


def interrupted(trials) -> set[int]:
    """The numbers of the trials that a stopped sweep left unfinished (each has been queued again)."""
    return {t.user_attrs[RERUN_OF] for t in trials if RERUN_OF in t.user_attrs}


def counted(study) -> int:
    """Trials that count towards the budget: finished (interrupted ones aside) or running now."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    again = interrupted(trials)
    return sum(1 for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
               or (t.state == TrialState.FAIL and t.number not in again))


def give_back(study, number: int, params: dict) -> None:
    """Mark the unfinished trial `number` failed, and queue its parameters to run again."""
    from optuna.trial import TrialState

    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(params, user_attrs={RERUN_OF: number})


def recover_interrupted(study) -> list[int]:
    """Give back every trial left running by a sweep that was killed; returns their numbers.

    Called only while this process holds the sweep's lock, so no other sweep process runs them.
    """
    from optuna.trial import TrialState

    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for t in stale:
        give_back(study, t.number, t.params)
    return [t.number for t in stale]
