"""`zerotune profile`: where a training step spends its time, measured with torch.profiler.

The model, data and Trainer are built exactly as `train` builds them; a few steps run after a
warm-up, each phase (data, forward, backward, optimizer, logging) timed and labelled with
`record_function`, so the phases also show as named spans in the trace. TensorBoard's profiler
plugin is no longer maintained, so the trace is a Chrome/Perfetto JSON file that
https://ui.perfetto.dev or chrome://tracing opens.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, record_function

from ..compute.threads import torch_threads
from ..config import Config, apply_overrides, build_config, load_config
from ..errors import UserError
from ..pipeline.train import builtin_callbacks, prepare
from ..run.atomic import atomic_write_bytes
from ..run.files import RunDir, create_unique_run_dir, new_run_name
from ..run.lock import run_lock
from ..runload.load import read_run_config
from ..track.sink import EventSink
from ..train.callbacks import EarlyStopping, ProgressBar, ProgressLines
from ..train.loop import Trainer
from ..train.options import TrainOptions

PHASES = ("data", "forward", "backward", "optimizer", "logging")
MAX_STEPS = 100
WARMUP_STEPS = 2  # the first steps pay for allocation and kernel selection; they are not measured
TOP_OPERATORS = 15
OPEN_HINT = "open it in https://ui.perfetto.dev or chrome://tracing"


@dataclass
class ProfileResult:
    out_dir: Path  # the profile/ directory: events and trace
    trace: Path
    steps: int
    step_ms: float  # the mean time of a measured step
    shares: dict[str, float]  # phase -> fraction of the step; they sum to 1
    table: str  # the top operators by self time


def profile(target: str | Path | None, steps: int = 5, overrides: list[str] | None = None) -> ProfileResult:
    """Profile `steps` training steps of the model a recipe (or a run's config.yaml) builds.

    Args:
        target: a recipe file (None: the default recipe), or a run directory.
        steps: measured steps, after WARMUP_STEPS unmeasured ones.
        overrides: ``group.field=value`` changes, as `--set` gives them to `train`.

    Returns:
        Where the profile went and what it found. A recipe gets a new run directory named
        ``<data>-<model>-profile-<time>``; a run gets its ``profile/`` directory.
    """
    if not 1 <= steps <= MAX_STEPS:
        raise UserError(f"--steps must be between 1 and {MAX_STEPS}, got {steps}")
    config, run_dir = _target_config(target, overrides or [])
    with torch_threads(config.train.threads, "train.threads"), contextlib.ExitStack() as lock:
        run = prepare(config)  # everything is checked before a directory is made
        if run_dir is None:
            name = new_run_name(f"{config.data.name}-{config.model.name}-profile")
            run_dir = create_unique_run_dir(config.log.dir, name)
        lock.enter_context(run_lock(run_dir))  # a run's profile/ is not written while another job writes the run
        files = RunDir(run_dir)
        if files.profile.is_dir():  # an earlier profile's events would mix with this one's
            shutil.rmtree(files.profile)
        files.profile.mkdir(parents=True)
        timer = _PhaseTimer(run.device)
        # TensorBoard views, as in training: their cost is the logging phase. No progress: its header
        # would announce the recipe's whole length, not the profiled steps.
        callbacks = [cb for cb in builtin_callbacks(run, files.profile)
                     if not isinstance(cb, (EarlyStopping, ProgressBar, ProgressLines))]
        config = run.config  # train.precision resolved for the device
        options = TrainOptions(optim=config.optim, schedule=config.schedule, log=config.log, callbacks=callbacks,
                               augment=run.augment, mix=run.mix, groups=run.groups, freeze=run.freeze,
                               phase=timer.phase)
        trainer = Trainer(run.model, run.data, run.task, config.train, files.profile, run.device, options)
        prof = _run_profiled(trainer, timer, steps)
        return _write_results(files, timer.seconds, prof, steps, run.device)


def _target_config(target, overrides: list[str]) -> tuple[Config, Path | None]:
    """The config to profile, and the run directory when `target` is one."""
    if target is not None and Path(target).is_dir():
        if not RunDir(target).is_run():
            raise UserError(f"{target} is neither a recipe nor a run directory (it has no config.yaml)")
        config = read_run_config(target)
        if overrides:
            config = build_config(apply_overrides(config.to_dict(), overrides))
        return config, Path(target)
    if target is not None and not Path(target).is_file():
        raise UserError(f"{target} is neither a recipe nor a run directory")
    return load_config(target, overrides), None


def _run_profiled(trainer: Trainer, timer: _PhaseTimer, steps: int):
    """WARMUP_STEPS then `steps` of the Trainer's own steps under the profiler; only the latter are timed."""
    activities = [ProfilerActivity.CPU]
    if trainer.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    schedule = torch.profiler.schedule(wait=0, warmup=WARMUP_STEPS, active=steps, repeat=1)
    state, batches, epoch = trainer.state, None, None
    trainer.start()
    if trainer.freeze is not None:  # the first epoch's frozen set, as `fit` sets it
        trainer.freeze.apply(trainer.model, 0)
    try:
        with _without_profiler_notes(), torch.profiler.profile(activities=activities, schedule=schedule,
                                                               record_shapes=False) as prof:
            for i in range(WARMUP_STEPS + steps):
                if state.batch_in_epoch >= trainer.micro_per_epoch:  # on to the next epoch, without its evaluation
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                if epoch != state.epoch:
                    epoch, batches = state.epoch, trainer.train_split.epoch_batches(
                        trainer.tc.seed, state.epoch, trainer.tc.batch_size)
                timer.measuring = i >= WARMUP_STEPS
                trainer.step(batches)
                prof.step()
    finally:
        trainer.end()
    return prof


@contextmanager
def _without_profiler_notes():
    """Standard error without libkineto's ``USDT: … profiler_start`` notes, which it writes straight to
    file descriptor 2 (no log level silences them); everything else written there is passed on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith("USDT:")]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _PhaseTimer:
    """The Trainer's phase hook: labels each phase in the trace and adds its wall time (the GPU's work
    included) to `seconds` while `measuring`."""

    def __init__(self, device: torch.device):
        self.device, self.measuring = device, False
        self.seconds = dict.fromkeys(PHASES, 0.0)

    @contextmanager
    def phase(self, name: str):
        with record_function(f"zerotune/{name}"):
            start = time.perf_counter()
            yield
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if self.measuring:
                self.seconds[name] += time.perf_counter() - start


def _write_results(files: RunDir, times: dict[str, float], prof, steps: int, device) -> ProfileResult:
    """The trace (gzip JSON), the operator table and the phase shares, also written to TensorBoard."""
    total = sum(times.values()) or 1e-12
    shares = {k: v / total for k, v in times.items()}
    sort = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = _operator_table(prof, sort)
    with tempfile.TemporaryDirectory() as tmp:  # torch writes plain JSON; the run gets it gzipped, atomically
        plain = Path(tmp) / "trace.json"
        prof.export_chrome_trace(str(plain))
        atomic_write_bytes(files.profile_trace, gzip.compress(plain.read_bytes()))
    step_ms = 1000 * total / steps
    sink = EventSink(files.profile)
    try:
        for k, v in shares.items():
            sink.add_scalar(f"profile/share_{k}", v, 0)
        sink.add_scalar("profile/step_ms", step_ms, 0)
        sink.add_text("profile/top_operators", _as_markdown(table, shares, step_ms), 0)
    finally:
        sink.close()
    return ProfileResult(files.profile, files.profile_trace, steps, step_ms, shares, table)


def _operator_table(prof, sort: str) -> str:
    """The top operators by self time; the phase labels and step markers are left out (not operators)."""
    from torch.autograd.profiler_util import EventList

    ops = [e for e in prof.key_averages() if not e.key.startswith(("zerotune/", "ProfilerStep"))]
    return EventList(ops).table(sort_by=sort, row_limit=TOP_OPERATORS)


def _as_markdown(table: str, shares: dict[str, float], step_ms: float) -> str:
    """The text tab: the phase shares, then the operator table as preformatted text."""
    rows = "\n".join(f"| {k} | {100 * v:.1f}% |" for k, v in shares.items())
    block = "\n".join("    " + line for line in table.splitlines())
    return (f"Mean step {step_ms:.2f} ms.\n\n| phase | share |\n|---|---|\n{rows}\n\n{block}\n\n"
            f"Trace: profile/trace.json.gz; {OPEN_HINT}.")


def format_result(result: ProfileResult) -> str:
    """What `zerotune profile` prints."""
    phases = "  ".join(f"{k} {100 * v:.1f}%" for k, v in result.shares.items())
    return (f"{result.table}\n{result.steps} steps, mean {result.step_ms:.2f} ms: {phases}\n"
            f"trace: {result.trace}  ({OPEN_HINT})\n"
            f"TensorBoard: zerotune board {result.out_dir}")
