"""`zerotune runs`: one line per run, read from the event files, to compare runs at a glance."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..run.files import RunDir, read_run_config_dict
from .events import find_runs, read_run_events

# Shown when no hyperparameter differs between the runs listed (or there is one run).
DEFAULT_KEYS = ("optim.name", "optim.lr", "train.batch_size", "train.epochs")
# Never "key": they differ between every run without saying anything about the model.
NOT_KEYS = ("log.", "data.path", "train.device", "train.threads")
MAX_KEYS = 6


@dataclass
class RunRow:
    """One run's summary."""

    name: str
    path: str
    model: str | None
    data: str | None
    monitor: str | None
    best: float | None
    steps: int
    seconds: float | None
    finished: bool
    hparams: dict[str, Any] = field(default_factory=dict)
    kind: str = "run"  # or "lr-find": a learning-rate range test, which trains nothing to keep


def _higher_is_better(metric: str) -> bool:
    return any(s in metric for s in ("accuracy", "r2", "f1", "auc"))


def summarize(run_dir: Path, logdir: Path) -> RunRow:
    """Read one run into a RunRow."""
    ev = read_run_events(run_dir)
    best_tags = [t for t in ev.scalars if t.startswith("best/")]
    monitor = best = None
    if best_tags:
        monitor = best_tags[0].removeprefix("best/")
        best = ev.last(best_tags[0])
    else:  # an older run, or one killed before the logger wrote a running best
        for tag in ("val/accuracy", "val/r2", "val/loss"):
            values = [v for _, v in ev.scalars.get(tag, []) if not math.isnan(v)]
            if values:
                monitor, best = tag, (max(values) if _higher_is_better(tag) else min(values))
                break
    seconds = ev.last("run/seconds")
    if seconds is None and ev.first_wall is not None and ev.last_wall is not None:
        seconds = ev.last_wall - ev.first_wall
    name = str(run_dir.relative_to(logdir)) if run_dir != logdir else run_dir.name
    model, data = ev.hparams.get("model.name"), ev.hparams.get("data.name")
    if model is None or data is None:  # no hparams record (an lr-find, a run killed early): its config says
        model, data = _names_from_config(run_dir, model, data)
    return RunRow(name=name, path=str(run_dir), model=model, data=data, monitor=monitor, best=best,
                  steps=ev.last_step, seconds=seconds, finished=ev.finished, hparams=ev.hparams,
                  kind="lr-find" if RunDir(run_dir).lr_find_plot.is_file() else "run")


def _names_from_config(run_dir: Path, model: str | None, data: str | None) -> tuple[str | None, str | None]:
    """model.name and data.name from the run's config.yaml where the events lack them; as given when unreadable."""
    try:
        config = read_run_config_dict(run_dir)
        return model or config["model"]["name"], data or config["data"]["name"]
    except (UserError, KeyError, TypeError):  # a table of many runs lists a damaged one as far as it can
        return model, data


def collect_runs(logdir: str | Path) -> list[RunRow]:
    """Summaries of every run under ``logdir``, sorted by name.

    Raises:
        UserError: when the directory does not exist or holds no event files.
    """
    logdir = Path(logdir)
    runs = find_runs(logdir)
    if not runs:
        raise UserError(f"no runs in {logdir}: no TensorBoard event files found under it")
    return [summarize(r, logdir) for r in runs]


def key_hparams(rows: list[RunRow]) -> list[str]:
    """Hyperparameters whose values differ between runs (at most MAX_KEYS), else a default few."""
    names = sorted({k for r in rows for k in r.hparams if not k.startswith(NOT_KEYS)})
    differing = [k for k in names if len({json.dumps(r.hparams.get(k)) for r in rows}) > 1]
    differing = [k for k in differing if k not in ("model.name", "data.name")]  # own columns
    if differing:
        # What is tuned most often first; then by group, the model before the data.
        order = {g: i for i, g in enumerate(("optim.", "schedule.", "train.", "model.", "data."))}
        return sorted(differing, key=lambda k: (k not in DEFAULT_KEYS, order.get(k.split(".")[0] + ".", 9), k))[:MAX_KEYS]
    return [k for k in DEFAULT_KEYS if any(k in r.hparams for r in rows)]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{seconds:.1f}s")


def table(rows: list[RunRow]):
    """A rich Table of the runs."""
    from rich.table import Table

    keys = key_hparams(rows)
    t = Table(title=f"{len(rows)} run{'s' if len(rows) != 1 else ''}")
    for col in ("run", "model", "data", *keys, "best val metric", "steps", "duration", "status"):
        t.add_column(col, justify="right" if col in ("steps", "duration") else "left")
    for r in rows:
        best = f"{r.monitor} {r.best:.4f}" if r.best is not None else "-"
        t.add_row(r.name, _fmt(r.model), _fmt(r.data), *(_fmt(r.hparams.get(k)) for k in keys), best,
                  str(r.steps), _duration(r.seconds), _status(r))
    return t


def _status(r: RunRow) -> str:
    return r.kind if r.kind != "run" else "finished" if r.finished else "unfinished"


def runs_command(logdir: str | Path = "runs", as_json: bool = False) -> int:
    """Print the table of runs under ``logdir`` (or JSON with every hyperparameter)."""
    rows = collect_runs(logdir)
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2, default=str))
        return 0
    from ..terminal.console import console

    console().print(table(rows))
    return 0
