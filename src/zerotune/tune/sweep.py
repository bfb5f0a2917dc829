"""``zerotune sweep``: a hyperparameter search with Optuna in which every trial is a normal run directory.

A sweep directory holds ``sweep.json`` (the base config, the searched parameters, the objective and the
sampler: all that ``--resume`` needs), the Optuna study in ``study.db`` (SQLite) and one run directory
per trial, ``trial-000``, ``trial-001``, ... made by the normal training pipeline, so that ``eval``,
``export``, ``board`` and ``runs`` work on each. ``--jobs J`` runs J worker processes that share the study
through its storage; a sweep that was killed continues with ``--resume``, which gives back the trials it
left running (marked failed, their parameters queued again) and runs until the budget is spent.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..run.files import SweepDir, create_run_dir, create_unique_run_dir, new_run_name, read_json, write_json
from ..run.lock import hold_lock
from .sweep_space import Param, check_params, parse_param
from .sweep_study import PRUNERS, SAMPLERS


@dataclass
class SweepPlan:
    """What a sweep searches and how; saved as ``sweep.json``."""

    base: dict  # the validated config every trial starts from (recipe and --set applied)
    params: list[Param]
    trials: int
    metric: str  # the recipe's train.monitor, resolved
    direction: str  # "maximize" or "minimize"
    sampler: str = "tpe"
    pruner: str | None = None  # None: no pruning
    seed: int = 0
    recipe: str | None = None
    sets: list[str] = field(default_factory=list)
    study_name: str = "sweep"

    def to_dict(self) -> dict:
        return {**self.__dict__, "params": [p.to_dict() for p in self.params]}

    @classmethod
    def from_dict(cls, d: dict) -> SweepPlan:
        return cls(**{**d, "params": [Param.from_dict(p) for p in d["params"]]})


@dataclass
class SweepOptions:
    """The command line of a new sweep."""

    recipe: str | None
    params: list[str]
    trials: int
    sets: list[str] = field(default_factory=list)
    sampler: str = "tpe"
    prune: bool = False
    pruner: str = "median"
    seed: int = 0
    name: str | None = None
    runs_dir: str | None = None


def plan_sweep(opts: SweepOptions) -> SweepPlan:
    """Check everything a new sweep is given (recipe, parameters, data, model) and plan it; writes nothing."""
    from ..config import load_config
    from ..pipeline.train import prepare
    from ..train.loop import resolve_monitor

    _check_counts(opts.trials)
    if opts.sampler not in SAMPLERS:
        raise UserError(f"--sampler {opts.sampler!r} is unknown; allowed: {', '.join(SAMPLERS)}")
    if opts.pruner not in PRUNERS:
        raise UserError(f"--pruner {opts.pruner!r} is unknown; allowed: {', '.join(PRUNERS)}")
    params = [parse_param(text) for text in opts.params]
    config = load_config(opts.recipe, list(opts.sets))
    base = config.to_dict()
    check_params(params, base)
    if opts.sampler == "grid":
        size = _grid_size(params)
        if opts.trials > size:
            raise UserError(f"--trials {opts.trials} is more than the grid's {size} points; give --trials {size}")
    metric, mode = resolve_monitor(config.train, prepare(config).task)  # data and model built and checked
    recipe = str(Path(opts.recipe).resolve()) if opts.recipe else None
    return SweepPlan(base, params, opts.trials, metric, "maximize" if mode == "max" else "minimize", opts.sampler,
                     opts.pruner if opts.prune else None, opts.seed, recipe, list(opts.sets))


def _check_counts(trials: int | None, jobs: int = 1) -> None:
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be at least 1, got {trials}")
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")


def _grid_size(params: list[Param]) -> int:
    size = 1
    for p in params:
        size *= len(p.grid())
    return size


def start_sweep(opts: SweepOptions, jobs: int = 1, out=print):
    """Plan a new sweep, create its directory and study, and run it.

    Args:
        opts: the sweep's recipe, parameters, budget, sampler and pruner.
        jobs: worker processes that run trials side by side.
        out: where the progress lines go.

    Returns:
        The sweep's summary (see `sweep_report.summarize`).
    """
    from ..pipeline.train import default_run_prefix
    from .sweep_study import create_study

    _check_counts(opts.trials, jobs)
    plan = plan_sweep(opts)
    root = Path(opts.runs_dir or plan.base["log"]["dir"])
    if opts.name:
        path = create_run_dir(root, opts.name)
    else:
        from ..config import build_config

        path = create_unique_run_dir(root, new_run_name("sweep-" + default_run_prefix(build_config(plan.base))))
    sweep = SweepDir(path)
    plan.study_name = path.name
    write_json(sweep.spec, plan.to_dict())
    optuna_quiet()
    create_study(plan, sweep.study)
    out(f"sweep: {path} ({plan.trials} trial{'s' if plan.trials != 1 else ''} of "
        f"{', '.join(p.key for p in plan.params)}; "
        f"{plan.direction} {plan.metric})")
    return run_sweep(path, jobs, out=out)


def read_plan(sweep_dir: str | Path) -> SweepPlan:
    """The plan of the sweep in `sweep_dir`; a UserError when it holds no sweep."""
    sweep = SweepDir(sweep_dir)
    if not sweep.is_sweep():
        raise UserError(f"{sweep_dir} is not a sweep directory (no {sweep.spec.name} and {sweep.study.name} in it)")
    try:
        return SweepPlan.from_dict(read_json(sweep.spec))
    except (TypeError, KeyError, ValueError) as e:
        raise UserError(f"{sweep.spec} is not a sweep description this version reads ({e})") from None


def run_sweep(sweep_dir: str | Path, jobs: int = 1, trials: int | None = None, out=print):
    """Run the sweep in `sweep_dir` until its budget is spent, then summarise it (also ``--resume``).

    Args:
        sweep_dir: the sweep directory.
        jobs: worker processes.
        trials: a new budget (default: the one it was started with).
        out: where the progress lines go.
    """
    from .sweep_report import summarize
    from .sweep_study import load_study, recover_interrupted

    _check_counts(trials, jobs)
    sweep = SweepDir(sweep_dir)
    plan = read_plan(sweep.path)
    with sweep_lock(sweep) as lock:
        if trials is not None and trials != plan.trials:  # under the lock: the workers read the budget from it
            plan.trials = trials
            write_json(sweep.spec, plan.to_dict())
        optuna_quiet()
        study = load_study(plan, sweep.study)
        for number in recover_interrupted(study):
            out(f"trial {number} was interrupted: marked FAIL, its parameters queued to run again")
        if lock is not None:
            lock.share()
        if jobs == 1:
            work(sweep.path, 0, 1, contextlib.nullcontext(), out)
        else:
            _run_workers(sweep.path, jobs)
        return summarize(load_study(plan, sweep.study), plan, sweep.path)


def work(sweep_dir: Path, worker: int, jobs: int, ask_lock, out=print) -> None:
    """One worker: take the next trial while the budget lasts, and train it.

    Args:
        sweep_dir: the sweep directory.
        worker: this worker's index (its sampler's seed is the plan's plus this).
        jobs: the number of workers (with more than one, a trial uses one thread unless it sets its own).
        ask_lock: held while the budget is checked and a trial taken, so that the workers never overshoot it.
        out: where each finished trial's line goes.
    """
    from .sweep_study import counted, load_study
    from .sweep_trial import run_trial

    optuna_quiet()
    plan = read_plan(sweep_dir)
    study = load_study(plan, SweepDir(sweep_dir).study, worker)
    while True:
        with ask_lock:
            if counted(study) >= plan.trials:
                return
            trial = study.ask()
        out(run_trial(study, trial, plan, Path(sweep_dir), jobs))


def _worker_main(sweep_dir: str, worker: int, jobs: int, ask_lock) -> None:
    def out(line: str) -> None:
        print(line, flush=True)

    with sweep_lock(SweepDir(sweep_dir), shared=True):  # outlives the sweep process if that is killed alone
        work(Path(sweep_dir), worker, jobs, ask_lock, out)


def _run_workers(sweep_dir: Path, jobs: int) -> None:
    """`jobs` worker processes, started fresh (spawn), sharing the study; wait for all of them."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    lock = ctx.Lock()
    procs = [ctx.Process(target=_worker_main, args=(str(sweep_dir), i, jobs, lock), name=f"sweep-worker-{i}")
             for i in range(jobs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"sweep workers {', '.join(failed)} failed (exit codes "
                           f"{', '.join(str(p.exitcode) for p in procs if p.exitcode != 0)})")


@contextlib.contextmanager
def sweep_lock(sweep: SweepDir, shared: bool = False):
    """Held while a process runs the sweep, so that a second ``--resume`` is refused while any runs.

    The sweep process takes it exclusively to give back interrupted trials, then shares it with its
    workers (`Hold.share`), which keep holding it if the sweep process is killed and they are not.
    Yields the `Hold` (None where there is no ``fcntl``: no guard).
    """
    with hold_lock(sweep.lock, f"sweep {sweep.path}", shared=shared) as hold:
        yield hold


def optuna_quiet() -> None:
    """Optuna's own log lines (each trial, each study) off: the sweep prints one line per trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
