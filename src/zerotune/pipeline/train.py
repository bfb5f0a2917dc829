"""The Python API behind the CLI: train a run (or fine-tune one), resume it, evaluate it."""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from ..compute.threads import torch_threads
from ..config import Config, apply_overrides, build_config
from ..errors import UserError
from ..run.files import (RunDir, atomic_write_text, clear_run_outputs, create_run_dir, create_unique_run_dir,
                         new_run_name, read_json, write_json)
from ..run.load import build_model_for, load_data, load_run, read_run_config, run_data, save_model_files
from ..tasks.supervised import make_task
from ..track.tensorboard import TensorBoardLogger
from ..train.callbacks import EarlyStopping, progress_callback
from ..train.env import resolve_device, seed_everything, set_deterministic
from ..train import checkpoint as ckpt
from ..train.loop import check_monitor, check_progress, fit

# Fields that may change when a run is resumed; anything else would break exact continuation.
RESUMABLE_OVERRIDES = ("train.epochs", "train.max_steps", "train.early_stopping", "log.progress", "log.tensorboard")
# A run with no checkpoint yet starts again from step 0 in its own directory: only where it lives is fixed.
RESTART_FIXED = ("log.dir", "log.name")


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict
    steps: int
    stop_reason: str | None


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

    Returns:
        The run directory and the final metrics (also written to metrics.json).
    """
    checkpoint = run_dir = None
    if resume is not None:
        run_dir = Path(resume)
        config, checkpoint = _resume(run_dir, resume_overrides or [])
    with torch_threads(config.train.threads):  # the caller's count again once the run ends
        return _train_run(config, run_dir, checkpoint, resume_overrides, callbacks)


def _train_run(config: Config, run_dir: Path | None, checkpoint, resume_overrides, callbacks) -> TrainResult:
    """`train` once the config, and on resume the run directory and its checkpoint, are known."""
    fresh = checkpoint is None  # a new run, or one that starts again from step 0
    tc = config.train
    set_deterministic(tc.deterministic)
    seed_everything(tc.seed)
    device = resolve_device(tc.device)
    if tc.precision == "fp16" and device.type != "cuda":
        raise UserError("train.precision 'fp16' needs a CUDA device; use 'bf16' or '32' on cpu")

    from ..finetune.setup import adapt_config, attach, is_finetune

    source = None
    if is_finetune(config) and fresh:
        config, source = adapt_config(config)
    # A source run lends its normalisation statistics, tokenizer and transformer architecture.
    origin = run_dir if not fresh else (source.path if source is not None and source.kind == "run" else None)
    data = load_data(config, origin)
    task = make_task(data.meta, tc, config.data)
    check_monitor(tc, task)
    model = build_model_for(config, data.meta, origin)
    setup = attach(model, config, data.meta, source) if is_finetune(config) else None
    _check_model_fits(model, data)
    if checkpoint is not None:  # the checkpoint must fit this data and model before anything is written
        check_progress(checkpoint, data, tc)
        ckpt.fit_weights(model, checkpoint.weights, checkpoint.path / ckpt.MODEL_FILE)
    augment = _augmenter(config, data.meta)
    before = probe = None
    if setup is not None and fresh and config.finetune.baseline:
        from ..finetune.baseline import before_metrics, linear_probe

        before, probe = before_metrics(model, data, task, device), linear_probe(model, data, device, tc.seed)

    if run_dir is None:
        run_dir = (create_run_dir(config.log.dir, config.log.name) if config.log.name
                   else create_unique_run_dir(config.log.dir, new_run_name(default_run_prefix(config))))
    elif fresh:
        print(f"{run_dir} has no checkpoint yet: training it again from step 0 with its config.yaml",
              file=sys.stderr, flush=True)
        clear_run_outputs(run_dir)  # the dead attempt's events and files would mix with the new ones
    files = RunDir(run_dir)
    if fresh:
        atomic_write_text(files.config, config.to_yaml())
        write_json(files.meta, data.meta.to_dict())
        write_json(files.env, environment(device, tc.seed))
        save_model_files(run_dir, config, origin)
        if data.tokenizer is not None:
            data.tokenizer.save(files.tokenizer)
        if setup is not None:
            write_json(files.finetune, {
                "source": {"kind": source.kind, "spec": source.spec, "path": str(Path(source.path).resolve()),
                           "checkpoint": config.finetune.checkpoint if source.kind == "run" else None},
                **setup.summary(model, tc.epochs), "before": before, "probe": probe})
    else:
        if resume_overrides:
            atomic_write_text(files.config, config.to_yaml())
        if setup is not None and files.finetune.is_file():
            saved = read_json(files.finetune)
            before, probe = saved.get("before"), saved.get("probe")

    builtin = []
    if config.log.tensorboard:
        if task.kind == "lm":
            from ..track.lm_board import LMBoard

            builtin.append(LMBoard(run_dir, config, data, task))
        else:
            builtin.append(TensorBoardLogger(run_dir, config, data, task))
        if setup is not None:
            from ..finetune.board import FinetuneBoard

            builtin.append(FinetuneBoard(builtin[-1], setup.plan, setup.groups, before, probe))
    if tc.early_stopping is not None:
        builtin.append(EarlyStopping(tc.early_stopping.patience, tc.early_stopping.min_delta))
    if config.log.progress:
        builtin.append(progress_callback(run_dir.name))

    state = fit(model, data, task, config, run_dir, device, builtin + list(callbacks or []), resume=checkpoint,
                augment=augment, groups=setup.groups if setup else None, freeze=setup.plan if setup else None)
    metrics = final_metrics(run_dir, config, data, task, device)
    metrics["training"] = {"steps": state.step, "epochs": state.epoch, "seconds": round(state.elapsed, 3),
                           "stop_reason": state.stop_reason, "best_step": state.best_step,
                           "monitor": state.monitor, "best": state.best}
    if setup is not None:
        after = {f"{split}/{k}": metrics[split][k] for split in ("val", "test") for k in ("loss", "accuracy")
                 if isinstance(metrics[split].get(k), (int, float))}
        metrics["finetune"] = {**setup.summary(model, tc.epochs), "before": before, "probe": probe, "after": after}
        if config.log.tensorboard:
            from ..finetune.board import write_comparison

            write_comparison(run_dir, state.step, before or {}, probe, after)
    write_json(files.metrics, metrics)
    return TrainResult(run_dir, metrics, state.step, state.stop_reason)


def default_run_prefix(config: Config) -> str:
    """``digits-cnn``, or ``digits-cnn-finetune`` for a fine-tune; the time is appended."""
    from ..finetune.setup import is_finetune

    return f"{config.data.name}-{config.model.name}" + ("-finetune" if is_finetune(config) else "")


def _resume(run_dir: Path, overrides: list[str]) -> tuple[Config, ckpt.Checkpoint | None]:
    """The run's config with `overrides` applied, and its last checkpoint read and checked (None if it has none).

    Nothing is written here: the caller writes config.yaml once everything else has been checked too.
    """
    config = read_run_config(run_dir)
    found = ckpt.find_checkpoint(RunDir(run_dir).checkpoint("last"))
    for o in overrides:
        key = o.split("=", 1)[0].strip()
        if found is None and any(key == k or key.startswith(k + ".") for k in RESTART_FIXED):
            raise UserError(f"--set {key} cannot change on resume: the run stays in {run_dir}")
        if found is not None and not any(key == k or key.startswith(k + ".") for k in RESUMABLE_OVERRIDES):
            raise UserError(f"--set {key} cannot change on resume; allowed: {', '.join(RESUMABLE_OVERRIDES)}")
    if overrides:
        config = build_config(apply_overrides(config.to_dict(), overrides))
    return config, ckpt.load_checkpoint(found) if found is not None else None


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

    return Augmenter(aug)


def final_metrics(run_dir: Path, config: Config, data, task, device) -> dict:
    """Full metrics of the best checkpoint on val and test."""
    run = load_run(run_dir, "best", device)
    return {
        "checkpoint": run.checkpoint,
        "val": task.full_metrics(run.model, data.val.to(device)),
        "test": task.full_metrics(run.model, data.test.to(device)),
    }


def evaluate(run_dir: str | Path, split: str = "test", checkpoint: str = "best") -> dict:
    """Every metric of a run's model on one split of its data.

    Args:
        run_dir: the run directory.
        split: train, val or test.
        checkpoint: best or last.
    """
    if split not in ("train", "val", "test"):
        raise UserError(f"split {split!r} is unknown; allowed: train, val, test")
    run = load_run(run_dir, checkpoint)
    data = run_data(run)
    task = make_task(data.meta, run.config.train, run.config.data)
    metrics = task.full_metrics(run.model, data.split(split))
    if not metrics.get("n"):
        raise UserError(f"the {split} split of {run_dir} is empty (data.{split}_fraction is 0); "
                        f"evaluate another split with --split")
    return {"run": str(run_dir), "split": split, "checkpoint": run.checkpoint, **metrics}


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
