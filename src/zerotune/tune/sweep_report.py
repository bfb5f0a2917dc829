"""The end of a sweep: a table of its trials, the best trial's recipe, and parameter importances."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..run.atomic import atomic_write_text
from ..run.files import SweepDir
from .recipe_toml import recipe_toml
from .sweep_space import with_values
from .sweep_study import interrupted

ACCURACY = "accuracy"  # shown beside the objective when the objective is another metric


@dataclass
class TrialRow:
    """One trial, as the table shows it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING; INTERRUPTED for a failed trial queued again
    params: dict
    value: float | None  # the objective (for a pruned trial: its last reported value)
    accuracy: float | None  # val accuracy of the run's best checkpoint, where the task has one
    steps: int | None
    seconds: float | None
    run: str | None  # the trial's run directory


@dataclass
class SweepSummary:
    """A sweep's trials, its best trial and where that trial's recipe was written."""

    sweep_dir: Path
    metric: str
    direction: str
    rows: list[TrialRow]
    best: TrialRow | None = None
    best_recipe: Path | None = None
    importances: dict[str, float] = field(default_factory=dict)
    importance_note: str | None = None  # why importances are missing


def summarize(study, plan, sweep_dir: Path) -> SweepSummary:
    """Read the study into rows; write the best trial's recipe; compute importances when possible."""
    trials = study.get_trials(deepcopy=False)
    again = interrupted(trials)
    rows = [_row(t, Path(sweep_dir), t.number in again) for t in trials]
    summary = SweepSummary(Path(sweep_dir), plan.metric, plan.direction, rows)
    complete = [r for r in rows if r.state == "COMPLETE"]
    if complete:
        sign = 1 if plan.direction == "maximize" else -1
        summary.best = max(complete, key=lambda r: sign * r.value)
        summary.best_recipe = write_best_recipe(plan, summary.best, SweepDir(sweep_dir))
    summary.importances, summary.importance_note = _importances(study, len(complete))
    return summary


def _row(t, sweep_dir: Path, was_interrupted: bool) -> TrialRow:
    state = "INTERRUPTED" if was_interrupted else t.state.name
    value = t.value if t.state.name == "COMPLETE" else (
        t.intermediate_values[t.last_step] if t.state.name == "PRUNED" and t.last_step is not None else None)
    seconds = t.duration.total_seconds() if t.duration is not None else None
    run = t.user_attrs.get("run")
    return TrialRow(t.number, state, dict(t.params), value, t.user_attrs.get("val", {}).get(ACCURACY),
                    t.user_attrs.get("steps"), seconds, str(sweep_dir / run) if run else None)


def write_best_recipe(plan, best: TrialRow, sweep: SweepDir) -> Path:
    """The best trial's recipe: the sweep's base config with the trial's values, where runs go left to the user."""
    from ..config import build_config, data_option_applies

    config = build_config(with_values(plan.base, best.params)).to_dict()  # the schema's order of fields
    config["log"] = {k: v for k, v in config["log"].items() if k not in ("dir", "name")}
    config["data"] = {k: v for k, v in config["data"].items() if data_option_applies(k, config["data"]["name"])}
    header = (f"zerotune train {sweep.best_recipe}\n"
              f"The best trial of sweep {sweep.path}: trial {best.number}, {plan.metric} {best.value:.6g} "
              f"({best.run}), with every resolved value; its searched values:\n"
              + "".join(f"  {k} = {v!r}\n" for k, v in best.params.items()))
    atomic_write_text(sweep.best_recipe, recipe_toml(config, header))
    return sweep.best_recipe


def _importances(study, complete: int) -> tuple[dict[str, float], str | None]:
    """fANOVA importances of the searched parameters (seeded), or why there are none."""
    if complete < 2:
        return {}, "parameter importances need at least 2 complete trials"
    import optuna

    try:
        return dict(optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))), None
    except (ValueError, RuntimeError) as e:  # e.g. a parameter that took one value only
        return {}, f"parameter importances unavailable: {e}"


def sweep_table(summary: SweepSummary):
    """A rich Table: number, parameters, the objective (and val accuracy), state, steps, duration, run."""
    from rich.table import Table

    keys = sorted({k for r in summary.rows for k in r.params}, key=lambda k: k)
    show_acc = ACCURACY not in summary.metric and any(r.accuracy is not None for r in summary.rows)
    n = len(summary.rows)
    t = Table(title=f"sweep {summary.sweep_dir}: {n} trial{'s' if n != 1 else ''}, "
                    f"{summary.direction} {summary.metric}")
    for col in ("trial", *keys, summary.metric, *(["val accuracy"] if show_acc else []), "state", "steps",
                "duration", "run"):
        t.add_column(col, justify="left" if col in ("state", "run") else "right")
    for r in summary.rows:
        mark = " *" if summary.best is not None and r.number == summary.best.number else ""
        t.add_row(f"{r.number}{mark}", *(_fmt(r.params.get(k)) for k in keys), _fmt(r.value),
                  *([_fmt(r.accuracy)] if show_acc else []), r.state, _fmt(r.steps), _duration(r.seconds),
                  Path(r.run).name if r.run else "-")
    return t


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"
