"""The ``dist/`` TensorBoard section: world size, each rank's step time and collective time, the slowest rank.

Every rank measures itself; every `EVERY` steps the ranks gather their figures (a collective of a few
numbers) and rank 0 writes them through the run's one event file.
"""

from __future__ import annotations

import time

from ..train.callbacks import Callback, TrainState
from .env import DistContext

EVERY = 10  # steps between two gatherings of the ranks' timings


class DistBoard(Callback):
    """Runs on every rank; writes on rank 0 only.

    Scalars: ``dist/world_size``; per rank ``dist/step_time_ms/rank<r>`` (wall time per optimizer
    step) and ``dist/collective_ms/rank<r>`` (time per step inside all-reduces, barriers and
    gathers, waiting for the other ranks included); ``dist/collective_share`` (rank 0's collective
    time over its step time); ``dist/slowest_rank`` and ``dist/slowest_compute_ms``: the rank with
    the most time outside collectives, the one the others wait for.

    Args:
        ctx: this process's job.
        board: on rank 0, the run's TensorBoard callback (its ``sink`` is used); None elsewhere.
    """

    def __init__(self, ctx: DistContext, board=None):
        self.ctx, self.board = ctx, board
        self._t, self._steps = 0.0, 0

    def on_fit_start(self, state: TrainState) -> None:
        if self.board is not None and self.board.sink is not None:
            self.board.sink.scalars(state.step, (("dist/world_size", float(self.ctx.world_size)),))
        self.ctx.take_comm_seconds()
        self._t, self._steps = time.perf_counter(), 0

    def on_step_end(self, state: TrainState) -> None:
        self._steps += 1
        if state.step % EVERY:
            return
        now = time.perf_counter()
        mine = [(now - self._t) / self._steps, self.ctx.take_comm_seconds() / self._steps]
        rows = self.ctx.all_gather_floats(mine)
        self.ctx.take_comm_seconds()  # this gathering is the views' own cost, not training's
        self._t, self._steps = time.perf_counter(), 0
        if self.board is not None and self.board.sink is not None:
            self.board.sink.scalars(state.step, dist_scalars(rows))


def dist_scalars(rows) -> tuple:
    """(tag, value) pairs from a (world_size, 2) table of [step seconds, collective seconds] per rank."""
    items = []
    for r, (step, comm) in enumerate(rows.tolist()):
        items += [(f"dist/step_time_ms/rank{r}", step * 1000), (f"dist/collective_ms/rank{r}", comm * 1000)]
    compute = rows[:, 0] - rows[:, 1]
    slowest = int(compute.argmax())
    step0, comm0 = rows[0].tolist()
    items += [("dist/collective_share", comm0 / max(step0, 1e-12)), ("dist/slowest_rank", float(slowest)),
              ("dist/slowest_compute_ms", float(compute[slowest]) * 1000)]
    return tuple(items)
