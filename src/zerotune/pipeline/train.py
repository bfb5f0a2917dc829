"""The Python API behind the CLI: train a run (or fine-tune one), resume it, evaluate it."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..compute.threads import torch_threads
from ..config import Config, apply_overrides, build_config
from ..errors import UserError
from ..run.atomic import atomic_write_text
from ..run.files import (RunDir, clear_run_outputs, create_run_dir, create_unique_run_dir,
                         new_run_name, outermost_missing, read_json, write_json)
from ..runload.integrity import last_checkpoint, load_resumable
from ..run.lock import run_lock
from ..runload.load import build_model_for, load_data, load_run, read_run_config, run_data, save_model_files
from ..data.mixing import make_mixer
from ..modes.base import PreparedRun
from ..modes.registry import base_mode, modes_for
from ..tasks.tta import tta_metrics_of
from ..track.tensorboard import TensorBoardLogger
from ..train.callbacks import Callback, EarlyStopping, TrainState, progress_callback
from ..train.env import resolve_device, seed_everything, set_deterministic
from ..train import checkpoint as ckpt
from ..train.loop import check_monitor, check_progress, fit

# Fields that may change when a run is resumed; anything else would break exact continuation.
RESUMABLE_OVERRIDES = ("train.epochs", "train.max_steps", "train.early_stopping", "log.progress", "log.tensorboard",
                       "train.distributed.backend")
# A run with no checkpoint yet starts again from step 0 in its own directory: only where it lives is fixed.
RESTART_FIXED = ("log.dir", "log.name")


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    steps: int
    stop_reason: str | None
    findings: list | None = None  # `zerotune doctor`'s findings about the finished run (None: not checked)


def train(config: Config | None, *, resume: str | Path | None = None, resume_overrides: list[str] | None = None,
          callbacks: list | None = None) -> TrainResult:
    """Train a model as described by `config`, or continue the run at `resume`.

    Args:
        config: the run's Config (ignored when resuming: the run's saved config is used).
        resume: a run directory to continue from its last checkpoint; a run with no checkpoint yet
            (killed or diverged before its first) starts again from step 0 with its own config.
        resume_overrides: ``group.field=value`` changes allowed on resume (see RESUMABLE_OVERRIDES;
            any but RESTART_FIXED on a run that starts again).
        callbacks: extra Callback objects, called after the built-in ones.

    Everything that can fail on bad input (data, model shapes, the checkpoint to resume from) is
    checked before the run directory is created or changed, so a failed command leaves it as it was.
    The run directory is this job's alone from when it is made, or before a resume reads it, until
    `train` returns (`run.lock.run_lock`).

    Returns:
        The run directory, the final metrics (also written to metrics.json) and the doctor's findings
        (also in TensorBoard's Text tab, as doctor/findings).

    Raises:
        UserError: bad input, or another process holds the run directory (its pid is named).
    """
    with contextlib.ExitStack() as lock:  # the run directory, held by this job alone until it returns
        return _train(config, resume, resume_overrides, callbacks, lock)


def _train(config: Config | None, resume: str | Path | None, resume_overrides: list[str] | None,
           callbacks: list | None, lock: contextlib.ExitStack) -> TrainResult:
    """`train`, with `lock` holding the run directory from when it is known (resumed) or made (new)."""
    from ..distributed import env as dist_env

    checkpoint = run_dir = None
    if resume is not None:
        run_dir = Path(resume)
        if _holds_lock():  # before anything is read: another job may be writing its checkpoint
            lock.enter_context(run_lock(run_dir))
        config, checkpoint = _resume(run_dir, resume_overrides or [])
        if checkpoint is not None and _finished(run_dir, config, checkpoint):
            return _nothing_to_train(run_dir, checkpoint)
    ctx = dist_env.init(config.train)  # None unless torchrun (or --nproc) started this process
    try:
        with torch_threads(config.train.threads, "train.threads"):  # the caller's count again once the run ends
            run = _prepare(config, checkpoint, run_dir)
            set_up = lambda: _set_up_run_dir(run, run_dir, resume_overrides, lock)  # noqa: E731
            run_dir = ctx.on_main(set_up) if ctx else set_up()  # rank 0 writes, the others learn where
            c, main = run.config, ctx is None or ctx.is_main
            state = fit(run.model, run.data, run.task, c, run_dir, run.device,
                        _callbacks(run, run_dir, ctx, list(callbacks or [])), resume=checkpoint, augment=run.augment,
                        groups=run.groups, freeze=run.freeze, mix=run.mix, runner=_runner(ctx, c))
            if ctx is not None:  # every rank's last collective done before any leaves (see launch.end_process)
                ctx.barrier()
            metrics = _run_metrics(run, run_dir, state) if main else {}
        if main:
            write_json(RunDir(run_dir).metrics, metrics)
    finally:
        if ctx is not None:
            dist_env.shutdown()
    findings = None
    if main and config.log.tensorboard:  # the doctor reads the event files
        from ..doctor.after_training import check_finished_run

        findings = check_finished_run(run_dir, state.step)
    return TrainResult(run_dir, metrics, state.step, state.stop_reason, findings)


def _runner(ctx, config: Config):
    """How the Trainer of this process runs: None (one process), or the runner of the job's strategy."""
    if ctx is None:
        return None
    from ..distributed.strategy import make_runner

    return make_runner(ctx, config.train, config.optim)


def _holds_lock() -> bool:
    """Whether this process holds the run directory's lock: a single process, or rank 0, the rank that writes.

    Under ``--nproc`` that is a worker, not the launcher: the lock then lasts exactly as long as the
    process writing the run (the workers die with the launcher, distributed/parent.py).
    """
    from ..distributed.launch import in_worker

    return not in_worker() or os.environ.get("RANK") == "0"


def _callbacks(run: PreparedRun, run_dir: Path, ctx, extra: list) -> list[Callback]:
    """The built-in callbacks and `extra`; with several ranks, these on rank 0 only, and everywhere `DistBoard`."""
    if ctx is None:
        return builtin_callbacks(run, run_dir) + extra
    from ..distributed.board import DistBoard

    if not ctx.is_main:
        return [DistBoard(ctx)]
    builtin = builtin_callbacks(run, run_dir)
    board = next((cb for cb in builtin if isinstance(cb, TensorBoardLogger)), None)
    return builtin + extra + [DistBoard(ctx, board)]


def _prepare(config: Config, checkpoint: ckpt.Checkpoint | None, run_dir: Path | None) -> PreparedRun:
    """Data, task, model (and what each of the run's modes adds), each checked against the others and the checkpoint."""
    device = _set_up_process(config.train)
    config = _resolve_precision(config, device)
    modes, origin = modes_for(config), run_dir if checkpoint is not None else None
    if checkpoint is None:
        for mode in modes:
            config, lent = mode.configure(config)
            origin = origin or lent
    run, tc = PreparedRun(config, checkpoint, device, origin, modes), config.train
    run.data = load_data(config, origin)
    _check_ranks(tc, run.data)
    run.task = modes[0].task(config, run.data)
    if tc.sampler == "balanced":
        run.data.train = run.data.train.balanced()
    run.augment = _augmenter(config, run.data.meta)
    for mode in modes:
        mode.adapt_data(run)
    check_monitor(tc, run.task)
    run.model = build_model_for(config, run.data.meta, origin)
    for mode in modes:
        mode.setup_model(run)
    _check_model_fits(run.model, run.data)
    if checkpoint is not None:  # the checkpoint must fit this data and model before anything is written
        check_progress(checkpoint, run.data, tc)
        from ..distributed.env import check_resume

        check_resume(checkpoint.path, tc.distributed.strategy)
        ckpt.fit_weights(run.model, checkpoint.weights, checkpoint.path / ckpt.MODEL_FILE)
    run.mix = make_mixer(config.data.augment, run.data)
    for mode in modes:
        mode.ready(run)
    return run


def _check_ranks(tc, data) -> None:
    """With several ranks, the global batch must divide among them and every rank needs a batch."""
    from ..distributed.env import current

    ctx = current()
    if ctx is not None:
        from ..data.batches import num_batches
        from ..distributed.shard import check_shardable

        check_shardable(ctx.world_size, tc.batch_size, num_batches(len(data.train), tc.batch_size))


def prepare(config: Config) -> PreparedRun:
    """Data, task and model of a new run built from `config`, as `train` builds them; nothing is written."""
    return _prepare(config, None, None)


def _set_up_process(tc) -> torch.device:
    """Determinism and seeds for this process (threads are set by `train`); the device to train on."""
    from ..distributed.env import current

    set_deterministic(tc.deterministic)
    seed_everything(tc.seed)
    ctx = current()
    device = ctx.device if ctx is not None else resolve_device(tc.device)
    if tc.precision == "fp16" and device.type != "cuda":
        raise UserError("train.precision 'fp16' needs a CUDA device; use 'bf16' or '32' on cpu")
    return device


def _resolve_precision(config: Config, device: torch.device) -> Config:
    """`config` with ``train.precision`` as this device trains it ("auto" resolved), which config.yaml
    records, so that a resume on another machine continues in the same precision."""
    from ..compute.precision import resolve_precision
    from ..distributed.env import current

    ctx = current()
    precision = resolve_precision(config.train.precision, device, warn=ctx is None or ctx.is_main)
    if precision == config.train.precision:
        return config
    return config.model_copy(update={"train": config.train.model_copy(update={"precision": precision})})


def _set_up_run_dir(run: PreparedRun, run_dir: Path | None, resume_overrides: list[str] | None,
                    lock: contextlib.ExitStack) -> Path:
    """Create the run directory (or clear a restarted one) and write its files; return it.

    A new directory joins `lock` as soon as it exists; a resumed one is held already.
    """
    config = run.config
    if run_dir is None:
        return _new_run_dir(run, lock)
    files = RunDir(run_dir)
    if run.fresh:
        print(f"{run_dir} has no checkpoint yet: training it again from step 0 with its config.yaml",
              file=sys.stderr, flush=True)
        write_run_files(run, run_dir)  # first: on a full disk, the dead attempt's events are still there
        clear_run_outputs(run_dir)  # the dead attempt's events and files would mix with the new ones
        return run_dir
    for mode in run.modes:
        mode.resume(run, run_dir)
    if resume_overrides:
        atomic_write_text(files.config, config.to_yaml())
    return run_dir


def _new_run_dir(run: PreparedRun, lock: contextlib.ExitStack) -> Path:
    """Create a new run's directory, held in `lock` from then on, and write its files; on failure (a full
    disk) remove what was created, so no empty directory blocks the name."""
    config = run.config
    made = outermost_missing(config.log.dir)  # --runs-dir's folders this command creates, if any
    run_dir = (create_run_dir(config.log.dir, config.log.name) if config.log.name
               else create_unique_run_dir(config.log.dir, new_run_name(default_run_prefix(config))))
    try:
        lock.enter_context(run_lock(run_dir))
        write_run_files(run, run_dir)
    except BaseException:
        shutil.rmtree(made or run_dir, ignore_errors=True)
        raise
    return run_dir


def write_run_files(run: PreparedRun, run_dir: Path) -> None:
    """What a new run directory holds before training: config, data metadata, environment, model files, and
    each mode's own files."""
    config, files = run.config, RunDir(run_dir)
    atomic_write_text(files.config, config.to_yaml())
    write_json(files.meta, run.data.meta.to_dict())
    write_json(files.env, environment(run.device, config.train.seed))
    save_model_files(run_dir, config, run.origin)
    if run.data.tokenizer is not None:
        run.data.tokenizer.save(files.tokenizer)
    for mode in run.modes:
        mode.write_files(run, run_dir)


def builtin_callbacks(run: PreparedRun, run_dir: Path) -> list[Callback]:
    """TensorBoard views (the base mode's board first, then what the other modes add), early stopping, progress."""
    config, builtin = run.config, []
    if config.log.tensorboard:
        for mode in run.modes:
            builtin += mode.views(run, run_dir, builtin)
    if config.train.early_stopping is not None:
        builtin.append(EarlyStopping(config.train.early_stopping.patience, config.train.early_stopping.min_delta))
    if config.log.progress:
        builtin.append(progress_callback(run_dir.name))
    return builtin


def _run_metrics(run: PreparedRun, run_dir: Path, state: TrainState) -> dict:
    """metrics.json: the best checkpoint's val and test metrics, how training went, and what each mode adds."""
    metrics = final_metrics(run_dir, run.config, run.data, run.task, run.device)
    metrics["training"] = {"steps": state.step, "epochs": state.epoch, "seconds": round(state.elapsed, 3),
                           "stop_reason": state.stop_reason, "best_step": state.best_step,
                           "monitor": state.monitor, "best": state.best}
    for mode in run.modes:
        mode.report(run, run_dir, metrics, state.step)
    return metrics


def default_run_prefix(config: Config) -> str:
    """``digits-cnn``, ``digits-cnn-finetune`` for a fine-tune, ``digits-mlp-distill`` for a distillation
    (each mode's suffix); the time is appended."""
    return f"{config.data.name}-{config.model.name}" + "".join(mode.suffix for mode in modes_for(config))


def _resume(run_dir: Path, overrides: list[str]) -> tuple[Config, ckpt.Checkpoint | None]:
    """The run's config with `overrides` applied, and its last checkpoint read and checked (None if it has none).

    Nothing is written here: the caller writes config.yaml once everything else has been checked too.
    """
    config = read_run_config(run_dir)
    found = last_checkpoint(run_dir)
    for o in overrides:
        key = o.split("=", 1)[0].strip()
        if found is None and any(key == k or key.startswith(k + ".") for k in RESTART_FIXED):
            raise UserError(f"--set {key} cannot change on resume: the run stays in {run_dir}")
        if found is not None and not any(key == k or key.startswith(k + ".") for k in RESUMABLE_OVERRIDES):
            raise UserError(f"--set {key} cannot change on resume; allowed: {', '.join(RESUMABLE_OVERRIDES)}")
    if overrides:
        config = build_config(apply_overrides(config.to_dict(), overrides))
    return config, load_resumable(run_dir, config, found) if found is not None else None


def _finished(run_dir: Path, config: Config, checkpoint: ckpt.Checkpoint) -> bool:
    """Whether the run ended (its metrics.json, written last, is there) with no step left under `config`."""
    progress, tc = checkpoint.state.progress, config.train
    no_step_left = (progress.stop_requested or progress.epoch >= tc.epochs
                    or (tc.max_steps is not None and progress.step >= tc.max_steps))
    return no_step_left and RunDir(run_dir).metrics.is_file()


def _nothing_to_train(run_dir: Path, checkpoint: ckpt.Checkpoint) -> TrainResult:
    """A finished run resumed as it is: its files and TensorBoard curves stay as they are (writing the
    end of the run again would add a second point at its last step to every end-of-run tag)."""
    progress = checkpoint.state.progress
    print(f"{run_dir} finished at step {progress.step}; nothing left to train (to train on, raise train.epochs "
          f"or train.max_steps with --set)", file=sys.stderr, flush=True)
    return TrainResult(run_dir, read_json(RunDir(run_dir).metrics), progress.step, progress.stop_reason)


def _check_model_fits(model: torch.nn.Module, data) -> None:
    """Run one example through the model so a shape mismatch is reported before training starts."""
    x = data.train.sample_inputs(2)
    try:
        was = model.training
        model.eval()
        with torch.no_grad():
            out = model(x)
        model.train(was)
    except RuntimeError as e:
        raise UserError(f"model does not fit data of shape {tuple(x.shape[1:])}: {str(e).splitlines()[0]}") from None
    if out.shape[-1] != data.meta.num_outputs:
        raise UserError(f"model gives {out.shape[-1]} outputs, the data needs {data.meta.num_outputs}")


def _augmenter(config: Config, meta):
    aug = config.data.augment
    if not aug.enabled:
        return None
    if not meta.is_image:
        raise UserError("data.augment applies to image data only; this data set is a table")
    from ..data.augment import Augmenter

    return Augmenter(aug, meta.x_mean, meta.x_std)


def final_metrics(run_dir: Path, config: Config, data, task, device) -> dict:
    """Full metrics of the best checkpoint on val and test."""
    run = load_run(run_dir, "best", device)
    return {
        "checkpoint": run.checkpoint,
        "val": task.full_metrics(run.model, data.val.to(device)),
        "test": task.full_metrics(run.model, data.test.to(device)),
    }


def evaluate(run_dir: str | Path, split: str = "test", checkpoint: str = "best", tta: bool = False,
             prompts: str | Path | None = None, answers: str | None = None, force: bool = False) -> dict:
    """Every metric of a run's model on one split of its data, or on a file of prompts.

    Args:
        run_dir: the run directory.
        split: train, val or test.
        checkpoint: best or last.
        tta: also measure with test-time augmentation (key ``tta``): the softmax averaged over the
            plain input and the fixed views of `data/tta.py` that the run's augmentation implies.
        prompts: a language-model run: score the records of this JSONL file instead of a split
            (exact match of greedy answers in the run's chat format; ``split`` is then the file).
        answers: write each answer (prompt, reference, answer, match) as JSONL to this file, or with
            "" to ``RUN/eval/answers-<split>.jsonl`` (key ``answers``: the path).
        force: overwrite an answers file that exists.
    """
    from .answers import answers_file, check_request, held_for, score_prompts, write_answers

    if split not in ("train", "val", "test"):
        raise UserError(f"split {split!r} is unknown; allowed: train, val, test")
    if force and answers is None:
        raise UserError("--force overwrites the file of --answers; give --answers too")
    check_request(read_run_config(run_dir), prompts, answers)
    out = answers_file(run_dir, answers, split, prompts, force) if answers is not None else None
    rows = [] if out is not None else None
    with held_for(out, run_dir):
        run = load_run(run_dir, checkpoint)
        if prompts is not None:
            metrics, split = score_prompts(run, prompts, rows), str(prompts)
        else:
            metrics = _split_metrics(run, run_dir, split, tta, rows)
        if out is not None:
            write_answers(out, rows)
            metrics["answers"] = str(out)
    return {"run": str(run_dir), "split": split, "checkpoint": run.checkpoint, **metrics}


def _split_metrics(run, run_dir: str | Path, split: str, tta: bool, rows: list | None) -> dict:
    data = run_data(run)
    task = base_mode(run.config).task(run.config, data)
    metrics = task.full_metrics(run.model, data.split(split), *([rows] if rows is not None else []))
    if not metrics.get("n"):
        raise UserError(f"the {split} split of {run_dir} is empty (data.{split}_fraction is 0); "
                        f"evaluate another split with --split")
    if tta:
        metrics["tta"] = tta_metrics_of(run.model, data.split(split), data.meta, run.config.data.augment)
    return metrics


def environment(device: torch.device, seed: int) -> dict:
    """Versions, device and seed, for reproducibility records."""
    import numpy

    from .. import __version__

    return {
        "zerotune": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "torch": torch.__version__, "numpy": numpy.__version__, "device": str(device),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(), "seed": seed,
    }


def dumps_metrics(metrics: dict) -> str:
    return json.dumps(metrics, indent=2, sort_keys=True)
