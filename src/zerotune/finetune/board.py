"""TensorBoard for a fine-tune: what trained, at what rate, and what it bought.

Scalars: ``finetune/params_trainable``, ``finetune/params_frozen``, ``finetune/trainable_percent``
and ``finetune/blocks_trainable`` over steps (a staircase under gradual unfreezing), and
``lr/<group>`` for every layer group. Text: the group table (size, rate, first epoch it trains)
and one line each time blocks unfreeze. At the end, ``compare/{before,probe,after}/...`` and a
before/after table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..track import summaries
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
        self.sink: EventSink | None = None
        self._counted_epoch: int | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self.sink = self.board.sink
        if state.resumed_from_step is not None:  # the start views are in the file already
            return
        rows = group_table(self.plan, self.groups, state.model)
        compare = [(f"compare/{kind}/{k}", v) for kind, metrics in (("before", self.before), ("probe", self.probe))
                   for k, v in metrics.items()]
        self.sink.write([(summaries.text("finetune/groups", _md_table(
            ["block", "group", "parameters", "trainable", "lr", "trains from epoch"], rows)), 0)]
            + ([(summaries.scalars(compare), 0)] if compare else []))

    def on_step_end(self, state: TrainState) -> None:
        epoch_changed = self._counted_epoch != state.epoch
        if epoch_changed or state.step % EVERY == 0 or state.step == 1:
            self._write(state, epoch_changed)

    def _write(self, state: TrainState, epoch_changed: bool) -> None:
        s = state.step
        multiplier = state.lr / self.base[0] if self.base and self.base[0] else 0.0
        rates: dict[str, float] = {}
        for name, base in zip(self.names, self.base):
            rates.setdefault(name, base * multiplier)  # decayed and non-decayed halves of a group share one rate
        trainable, frozen = count_parameters(state.model)
        names = self.plan.trainable_at(state.epoch)
        blocks = sum(1 for g in self.plan.blocks if any(n in names for n in g.params))
        self.sink.scalars(s, tuple((f"lr/{name}", rate) for name, rate in rates.items()) + (
            ("finetune/params_trainable", trainable), ("finetune/params_frozen", frozen),
            ("finetune/trainable_percent", 100.0 * trainable / max(trainable + frozen, 1)),
            ("finetune/blocks_trainable", blocks)))
        if epoch_changed and self._counted_epoch is not None and self.plan.cfg.strategy == "gradual":
            before = self.plan.trainable_at(self._counted_epoch)
            new = [g.name for g in self.plan.blocks if any(n in names and n not in before for n in g.params)]
            if new:
                self.sink.write([(summaries.text("finetune/unfrozen", f"epoch {state.epoch}: {', '.join(new)} "
                                                 f"unfrozen ({trainable:,} trainable parameters)"), s)])
        self._counted_epoch = state.epoch

    # A resumed run writes at the same steps as an uninterrupted one: the next write after the
    # checkpoint still knows which epoch was counted last.
    def state_dict(self) -> dict:
        return {"counted_epoch": self._counted_epoch}

    def load_state_dict(self, d: dict) -> None:
        self._counted_epoch = d.get("counted_epoch")


def write_comparison(run_dir: Path, step: int, before: dict, probe: dict | None, after: dict) -> None:
    """Before/after scalars and a table, at the run's final step (through an EventSink of its own,
    since the training run's sink is closed by then).

    Args:
        before: metrics before fine-tuning, keyed like ``val/accuracy``.
        probe: linear-probe metrics on the frozen source features, or None.
        after: final metrics, keyed the same way.
    """
    values, rows = [], []
    for k in sorted(after):
        values.append((f"compare/after/{k}", after[k]))
        b = before.get(k)
        if b is not None:
            values += [(f"compare/before/{k}", b), (f"compare/gain/{k}", after[k] - b)]
        p = (probe or {}).get(k)
        rows.append([k, _fmt(b), _fmt(p), _fmt(after[k]), _fmt(None if b is None else after[k] - b)])
    sink = EventSink(run_dir)
    try:
        sink.write([(summaries.scalars(values), step), (summaries.text(
            "compare/before_after", _md_table(["metric", "before", "linear probe", "after", "change"], rows)), step)])
    finally:
        sink.close()


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"
