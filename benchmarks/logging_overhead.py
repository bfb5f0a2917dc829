"""What TensorBoard logging costs: the same training with logging off and with the defaults.

Run from the repository root::

    python benchmarks/logging_overhead.py                # digits CNN, defaults
    python benchmarks/logging_overhead.py --epochs 4 --repeats 3 --set model.name=mlp

Both modes run in this one process, interleaved (off, on, off, on, ...) so that drifts in machine
load hit both alike, from the same seed and initial weights. A timing callback placed before the
logger measures:

* step time: the mean time between consecutive ``on_step_end`` events inside an epoch, which
  includes the logger's per-step work (scalars every step, layer statistics every N steps,
  histograms every N steps);
* evaluation time: the time between the last step of an epoch and the first step of the next,
  which includes the validation pass, the logger's figures, images and PR curves, and the
  checkpoint;
* total: the whole ``fit``, start-up summaries (graph, input images, hparams) included.

Differences of two timings drown in noise on a loaded machine, so the logging cost is also
accounted directly: the wall time spent inside the logger's callbacks on the training thread,
plus the CPU time of its writer thread.

It then times single tensorboardX calls (``add_scalar``, ``add_histogram``) and the per-call cost
of the path the logger takes instead (one queued tuple per step). Ratios are on vs off.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from zerotune.config import load_config
from zerotune.data import build_data
from zerotune.runload.load import build_model_for
from zerotune.tasks.supervised import Task
from zerotune.track.tensorboard import TensorBoardLogger
from zerotune.train.callbacks import Callback
from zerotune.train.loop import fit


class StepTimer(Callback):
    """Times steps within epochs and the gaps at epoch boundaries (evaluation + callbacks).

    Both wall time and process CPU time (all threads, the background writer included) are kept:
    on a machine shared with other work, wall time swings with the load while CPU time stays
    close to the work actually done.
    """

    def __init__(self):
        self.steps: list[tuple[float, float]] = []
        self.boundaries: list[tuple[float, float]] = []
        self._last: tuple[float, float] | None = None
        self._epoch_ended = False

    def on_step_end(self, state) -> None:
        now = (time.perf_counter(), time.process_time())
        if self._last is not None:
            gap = (now[0] - self._last[0], now[1] - self._last[1])
            (self.boundaries if self._epoch_ended else self.steps).append(gap)
        self._last, self._epoch_ended = now, False

    def on_epoch_end(self, state) -> None:
        self._epoch_ended = True


class Timed(Callback):
    """Wraps the logger and adds up the wall time spent in each of its events (the cost the
    training thread pays), and the writer thread's CPU time (read before the final close)."""

    def __init__(self, inner: TensorBoardLogger):
        self.inner = inner
        self.seconds = {e: 0.0 for e in ("on_fit_start", "on_step_end", "on_eval_end", "on_epoch_end", "on_fit_end")}
        self.writer_cpu = 0.0

    def _timed(self, event: str, state) -> None:
        t0 = time.perf_counter()
        getattr(self.inner, event)(state)
        self.seconds[event] += time.perf_counter() - t0

    def on_fit_start(self, state): self._timed("on_fit_start", state)
    def on_step_end(self, state): self._timed("on_step_end", state)
    def on_eval_end(self, state): self._timed("on_eval_end", state)
    def on_epoch_end(self, state): self._timed("on_epoch_end", state)

    def on_fit_end(self, state):
        self.writer_cpu = self.inner.sink.busy_seconds
        self._timed("on_fit_end", state)


def run_once(cfg, data, task, logging: bool) -> dict:
    torch.manual_seed(cfg.train.seed)
    model = build_model_for(cfg, data.meta)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as run_dir:
        timed = Timed(TensorBoardLogger(Path(run_dir), cfg, data, task)) if logging else None
        callbacks = [timer] + ([timed] if timed else [])
        t0, c0 = time.perf_counter(), time.process_time()
        state = fit(model, data, task, cfg, Path(run_dir), torch.device("cpu"), callbacks)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    bounds = timer.boundaries or [(0.0, 0.0)]
    out = {"step": statistics.fmean(s[0] for s in timer.steps), "step_cpu": statistics.fmean(s[1] for s in timer.steps),
           "boundary": statistics.fmean(b[0] for b in bounds), "boundary_cpu": statistics.fmean(b[1] for b in bounds),
           "evals": len(state.history), "steps": state.step, "total": total, "total_cpu": total_cpu}
    if timed:
        n, e = max(state.step, 1), max(len(state.history), 1)
        out.update(hook_step=timed.seconds["on_step_end"] / n, writer_step=timed.writer_cpu / n,
                   hook_eval=timed.seconds["on_eval_end"] / e, hook_start=timed.seconds["on_fit_start"],
                   hook_end=timed.seconds["on_fit_end"])
    return out


def per_call_costs(n: int = 2000) -> dict:
    """Microseconds per tensorboardX call, and per queued step on the logger's path."""
    from tensorboardX import SummaryWriter

    from zerotune.track.sink import EventSink

    out = {}
    with tempfile.TemporaryDirectory() as d:
        w = SummaryWriter(d)
        t0 = time.perf_counter()
        for i in range(n):
            w.add_scalar("bench/scalar", 0.5, i)
        w.flush()
        out["add_scalar_us"] = (time.perf_counter() - t0) / n * 1e6
        weights = torch.randn(64, 64, 3, 3)  # a 3x3 conv layer, 36,864 values
        t0 = time.perf_counter()
        for i in range(n // 20):
            w.add_histogram("bench/hist", weights, i)
        w.flush()
        out["add_histogram_ms"] = (time.perf_counter() - t0) / (n // 20) * 1e3
        w.close()
    with tempfile.TemporaryDirectory() as d:
        sink = EventSink(d)
        loss = torch.tensor(0.5)
        t0 = time.perf_counter()
        for i in range(n):
            sink.scalars(i, (("train/loss", loss), ("train/lr", 1e-3), ("perf/samples_per_sec", 1.0),
                             ("perf/step_time_ms", 2.0)))
        out["queue_step_us"] = (time.perf_counter() - t0) / n * 1e6
        t0 = time.perf_counter()
        sink.close()
        out["write_step_us"] = (time.perf_counter() - t0) / n * 1e6
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="runs per mode, interleaved")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="GROUP.FIELD=VALUE", help="config override")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(None, [f"train.epochs={args.epochs}", "log.progress=false", *args.set])
    data = build_data(cfg.data)
    task = Task(data.meta, cfg.train.loss, cfg.train.label_smoothing)
    run_once(cfg, data, task, True)  # warm-up: imports, JIT tracing caches, allocator
    results = {False: [], True: []}
    for _ in range(args.repeats):
        for logging in (False, True):
            results[logging].append(run_once(cfg, data, task, logging))

    def med(logging, key):
        return statistics.median(r[key] for r in results[logging])

    r = results[True][0]
    print(f"model {cfg.model.name} on {cfg.data.name}: {r['steps']} steps, {r['evals']} evaluations per run, "
          f"{args.repeats} runs per mode, torch threads {torch.get_num_threads()}")
    print(f"log intervals: scalars every {cfg.log.scalars_every} step, layer stats every {cfg.log.layer_stats_every}, "
          f"histograms every {cfg.log.histograms_every}; images/figures/PR curves every evaluation")
    print(f"{'median of runs':30}{'off':>10}{'on':>10}{'ratio':>8}")
    for label, key, scale in (("step time, wall (ms)", "step", 1e3), ("step time, CPU (ms)", "step_cpu", 1e3),
                              ("eval + epoch end, wall (ms)", "boundary", 1e3), ("eval + epoch end, CPU (ms)", "boundary_cpu", 1e3),
                              ("whole fit, wall (s)", "total", 1), ("whole fit, CPU (s)", "total_cpu", 1)):
        off, on = med(False, key), med(True, key)
        print(f"{label:30}{off * scale:10.2f}{on * scale:10.2f}{on / max(off, 1e-12):8.3f}")
    print(f"difference on - off: {(med(True, 'step') - med(False, 'step')) * 1e6:.0f} µs wall and "
          f"{(med(True, 'step_cpu') - med(False, 'step_cpu')) * 1e6:.0f} µs CPU per step; "
          f"{(med(True, 'boundary') - med(False, 'boundary')) * 1e3:.0f} ms wall per evaluation")
    hook, writer, base = med(True, "hook_step"), med(True, "writer_step"), med(False, "step")
    print(f"accounted logging cost per step: {hook * 1e6:.0f} µs in the training thread + {writer * 1e6:.0f} µs CPU "
          f"in the writer thread = {(hook + writer) / base:.2%} of the logging-off step time "
          f"({hook / base:.2%} on the training thread)")
    print(f"accounted per evaluation: {med(True, 'hook_eval') * 1e3:.0f} ms; once at start: "
          f"{med(True, 'hook_start') * 1e3:.0f} ms; at the end (projector, final flush): {med(True, 'hook_end') * 1e3:.0f} ms")
    c = per_call_costs()
    crc = "native crc32c" if _has_native_crc() else "pure-Python CRC (pip install crc32c for a faster one)"
    print(f"tensorboardX add_scalar: {c['add_scalar_us']:.0f} µs/call; add_histogram (36,864 values): "
          f"{c['add_histogram_ms']:.2f} ms/call; {crc}")
    print(f"logger path, 4 scalars of one step: {c['queue_step_us']:.2f} µs queued on the training thread, "
          f"{c['write_step_us']:.0f} µs written in the background")
    return 0


def _has_native_crc() -> bool:
    try:
        import crc32c  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
