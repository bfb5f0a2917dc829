"""TensorBoard for a fine-tune: what trained, at what rate, and what it bought.

Scalars: ``finetune/params_trainable``, ``finetune/params_frozen``, ``finetune/trainable_percent``
and ``finetune/blocks_trainable`` over steps (a staircase under gradual unfreezing), and
``lr/<group>`` for every layer group. Text: the group table (size, rate, first epoch it trains)
what trains at the start and one line each time blocks unfreeze. At the end, ``compare/{before,probe,after}/...`` and a
before/after table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..track.sink import EventSink
from ..train.callbacks import Callback, TrainState
from .freezing import FreezePlan, count_parameters
from .unfreezing import first_epoch_training

if TYPE_CHECKING:
    from ..track.tensorboard import TensorBoardLogger

EVERY = 10  # steps between learning-rate and count points when nothing changed


def _md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def group_table(plan: FreezePlan, groups: list[dict], model) -> list[list]:
    """Rows: index, group, parameters, trainable parameters, learning rate, first epoch it trains."""
    sizes = {n: p.numel() for n, p in model.named_parameters()}
    rates = {g["name"]: g["lr"] for g in groups}
    rows = []
    for i, g in enumerate(plan.groups):
        ever = [n for n in g.params if n in plan.ever]
        if not ever:
            first = "never"
        elif plan.cfg.strategy == "gradual" and i < len(plan.blocks):
            first = first_epoch_training(i, len(plan.blocks), plan.cfg.unfreeze_every, plan.cfg.unfreeze_start)
        else:
            first = 0
        lr = f"{rates[g.name]:.3g}" if g.name in rates else "-"
        rows.append([i if i < len(plan.blocks) else "head", g.name, sum(sizes[n] for n in g.params),
                     sum(sizes[n] for n in ever), lr, first])
    return rows


class FinetuneBoard(Callback):
    """Writes the fine-tune's own TensorBoard views into the run's event file.

    They go through the sink of the run's TensorBoard callback, so one file, with one restart
    marker after a resume, holds every point; a second writer's file would sort after the main
    one and its marker would hide the points the main writer logged after the resume.

    Args:
        board: the run's TensorBoardLogger (called before this callback; its ``sink`` is used).
        plan: the freeze plan (which parameters train when).
        groups: the optimizer's parameter groups, in optimizer order (``name``, ``lr``).
        before: metrics of the source model on the target task before training.
        probe: linear-probe metrics on the frozen features, or None.
    """

    def __init__(self, board: TensorBoardLogger, plan: FreezePlan, groups: list[dict], before: dict | None = None,
                 probe: dict | None = None):
        self.board, self.plan = board, plan
        self.names = [g["name"] for g in groups]
        self.base = [g["lr"] for g in groups]
        self.before, self.probe = before or {}, probe or {}
        self.groups = groups
        self.writer: EventSink | None = None
        self._epoch_started = False

    def on_fit_start(self, state: TrainState) -> None:
        self.writer = self.board.sink
        if state.resumed_from_step is not None:  # the start views are in the file already
            return
        rows = group_table(self.plan, self.groups, state.model)
        self.writer.add_text("finetune/groups", _md_table(
            ["block", "group", "parameters", "trainable", "lr", "trains from epoch"], rows), 0)
        for k, v in self.before.items():
            self.writer.add_scalar(f"compare/before/{k}", v, 0)
        for k, v in self.probe.items():
            self.writer.add_scalar(f"compare/probe/{k}", v, 0)

    # A resumed run writes at the same steps as an uninterrupted one: epoch_start comes again
    # only when the run resumes on an epoch boundary.
    def on_epoch_start(self, state: TrainState) -> None:
        self._epoch_started = True  # counted at its first step, once the step is taken

    def on_step_end(self, state: TrainState) -> None:
        if self._epoch_started or state.step % EVERY == 0 or state.step == 1:
            self._write(state, self._epoch_started)
            self._epoch_started = False

    def _write(self, state: TrainState, epoch_started: bool) -> None:
        w, s = self.writer, state.step
        seen = set()
        for name, base in zip(self.names, self.base):
            if name not in seen:  # decayed and non-decayed halves of a group share one rate
                seen.add(name)
                w.add_scalar(f"lr/{name}", base * state.lr_multiplier, s)
        trainable, frozen = count_parameters(state.model)
        percent = 100.0 * trainable / max(trainable + frozen, 1)
        w.add_scalar("finetune/params_trainable", trainable, s)
        w.add_scalar("finetune/params_frozen", frozen, s)
        w.add_scalar("finetune/trainable_percent", percent, s)
        names = self.plan.trainable_at(state.epoch)
        blocks = sum(1 for g in self.plan.blocks if any(n in names for n in g.params))
        w.add_scalar("finetune/blocks_trainable", blocks, s)
        counts = f"{trainable:,} of {trainable + frozen:,} parameters train ({percent:.2f}%)"
        if epoch_started and state.epoch == 0 and state.resumed_from_step is None:  # what trains at the start
            training = [g.name for g in self.plan.groups if any(n in names for n in g.params)]
            w.add_text("finetune/unfrozen", f"epoch {state.epoch}: {counts}: {', '.join(training)}", s)
        elif epoch_started and state.epoch > 0 and self.plan.cfg.strategy == "gradual":
            before = self.plan.trainable_at(state.epoch - 1)
            new = [g.name for g in self.plan.blocks if any(n in names and n not in before for n in g.params)]
            if new:
                w.add_text("finetune/unfrozen", f"epoch {state.epoch}: {', '.join(new)} unfrozen; {counts}", s)


def write_comparison(run_dir: Path, step: int, before: dict, probe: dict | None, after: dict) -> None:
    """Before/after scalars and a table at the run's final step, appended to the run's event file
    (its writer is closed by then), so that the run keeps one event file.

    Args:
        before: metrics before fine-tuning, keyed like ``val/accuracy``.
        probe: linear-probe metrics on the frozen source features, or None.
        after: final metrics, keyed the same way.
    """
    from ..run.files import RunDir
    from ..track import summaries
    from ..track.event_file import append_records

    values, rows = [], []
    for k in sorted(after):
        values.append((f"compare/after/{k}", after[k]))
        b = before.get(k)
        if b is not None:
            values += [(f"compare/before/{k}", b), (f"compare/gain/{k}", after[k] - b)]
        p = (probe or {}).get(k)
        rows.append([k, _fmt(b), _fmt(p), _fmt(after[k]), _fmt(None if b is None else after[k] - b)])
    table = _md_table(["metric", "before", "linear probe", "after", "change"], rows)
    append_records(RunDir(run_dir).event_files()[-1],
                   [(summaries.scalars(values), step), (summaries.text("compare/before_after", table), step)])


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"
