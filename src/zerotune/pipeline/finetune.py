"""The fine-tuning API: start a fine-tune, merge LoRA adapters into a run, save the adapters alone.

A fine-tune is an ordinary run whose config has ``finetune.source``; :func:`finetune` only fills
that group in and calls :func:`zerotune.train`, so resume, eval, export and TensorBoard work on it
as on any run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typing import TYPE_CHECKING

from ..config import Config, load_config
from ..errors import UserError
from ..run.files import write_json

if TYPE_CHECKING:
    from ..run.files import RunDir


def finetune(recipe: str | Path | Config | None = None, *, source: str | None = None, strategy: str | None = None,
             overrides: list[str] | None = None, callbacks: list | None = None):
    """Fine-tune from a run directory or a pretrained transformer.

    Args:
        recipe: a recipe file, a Config, or None for the defaults.
        source: run directory, transformers directory or alias (overrides ``finetune.source``).
        strategy: full, head, partial, gradual or lora (overrides ``finetune.strategy``).
        overrides: further ``group.field=value`` strings.
        callbacks: extra training callbacks.

    Returns:
        The TrainResult of the new run; its metrics hold a ``finetune`` section with the
        before/after comparison, and its findings are the doctor's (run by `train` at the end).
    """
    from .train import train

    return train(finetune_config(recipe, finetune_overrides(source, strategy, overrides)), callbacks=callbacks)


def finetune_overrides(source: str | None, strategy: str | None, overrides: list[str] | None) -> list[str]:
    """`overrides` with ``finetune.source`` and ``finetune.strategy`` set when given."""
    extra = list(overrides or [])
    if source is not None:
        extra.append(f"finetune.source={source}")
    if strategy is not None:
        extra.append(f"finetune.strategy={strategy}")
    return extra


def finetune_config(recipe: str | Path | Config | None, overrides: list[str]) -> Config:
    """The Config of a new fine-tune: `recipe` with `overrides`, which must name a source."""
    if isinstance(recipe, Config):
        from ..config import apply_overrides, build_config

        config = build_config(apply_overrides(recipe.to_dict(), overrides))
    else:
        config = load_config(recipe, overrides)
    if config.finetune is None or not config.finetune.source:
        raise UserError("finetune needs a source: --from RUN_OR_MODEL_DIR (or finetune.source in the recipe)")
    return config


def _lora_run(run_dir: str | Path, checkpoint: str):
    from ..runload.load import load_run
    from ..models.lora import is_lora

    run = load_run(run_dir, checkpoint)
    if not is_lora(run.config):
        raise UserError(f"{run_dir} is not a LoRA fine-tune with unmerged adapters (finetune.strategy is not 'lora')")
    return run


def merge_lora(run_dir: str | Path, out: str | Path | None = None, checkpoint: str = "best") -> Path:
    """Write a copy of a LoRA run whose weights have the adapters merged in, for export and serving.

    The copy is a run directory of its own (config with ``finetune.merged = true``, meta, hf/,
    metrics and ``checkpoints/best``), so ``zerotune eval`` and ``zerotune export`` read it as is.

    Args:
        run_dir: the LoRA run.
        out: the new run directory (default: ``<run_dir>-merged``).
        checkpoint: best or last.

    Returns:
        The new run directory.
    """
    from ..models.lora import merge_into_base
    from ..run.files import RunDir, create_run_dir
    from ..run.lock import run_lock
    from ..train import checkpoint as ckpt

    run = _lora_run(run_dir, checkpoint)
    src = RunDir(run_dir)
    out = Path(out) if out is not None else src.path.parent / f"{src.path.name}-merged"
    state = ckpt.read_state(run.checkpoint_dir)  # read before anything is written
    progress = state.get("progress")
    step = state.get("step", progress.get("step") if isinstance(progress, dict) else None)
    merge_into_base(run.model)
    target = RunDir(create_run_dir(out.parent, out.name))
    with run_lock(target.path):  # from its creation, as a new run's directory
        _write_merged(run, src, target, step)
    return target.path


def _write_merged(run, src: RunDir, target: RunDir, step: int | None) -> None:
    """The merged run's config, the source's description files and its one `best` checkpoint."""
    from ..run.atomic import atomic_write_text
    from ..train import checkpoint as ckpt

    config = run.config.model_copy(deep=True)
    config.finetune.merged = True
    atomic_write_text(target.config, config.to_yaml())
    for file in (src.meta, src.env, src.metrics, src.finetune):
        if file.is_file():
            shutil.copy2(file, target.path / file.name)
    for folder in (src.hf, src.tokenizer):  # a transformer's config and tokenizer; a GPT's tokenizer
        if folder.is_dir():
            shutil.copytree(folder, target.path / folder.name)
    ckpt.save_checkpoint(target.checkpoint("best"), *ckpt.model_tensors(run.model),
                         {"step": step, "merged_from": str(src.path.resolve()), "checkpoint": run.checkpoint})


def save_adapters(run_dir: str | Path, out: str | Path | None = None, checkpoint: str = "best") -> Path:
    """Save a LoRA run's adapters and head alone, without the base weights.

    A transformer's adapters are written by peft (``adapter_config.json``,
    ``adapter_model.safetensors``: loadable with ``PeftModel.from_pretrained`` on the base
    model); our own models' adapters as ``adapter_model.safetensors`` with an
    ``adapter_config.json`` naming the base. Both get ``head.safetensors`` and ``labels.json``.

    Returns:
        The directory written (default: ``<run_dir>/adapters``).
    """
    from ..run.files import RunDir
    from ..run.lock import run_lock_if_inside

    run = _lora_run(run_dir, checkpoint)
    out = Path(out) if out is not None else RunDir(run_dir).adapters
    with run_lock_if_inside(out, run_dir):  # into the run (the default): not while another job writes there
        _write_adapters(run, out)
    return out


def _write_adapters(run, out: Path) -> None:
    """The adapters and head of a loaded LoRA run, written into the new or empty directory `out`."""
    from safetensors.torch import save_file

    from ..models.lora import adapter_tensors, is_transformer
    from ..run.files import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, HEAD_FILE, LABELS_FILE

    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    tensors = adapter_tensors(run.model)
    head = {k: v for k, v in tensors.items() if k.startswith("head.")}
    save_file(head, str(out / HEAD_FILE))
    ft = run.config.finetune
    if is_transformer(run.model):
        run.model.features.backbone.save_pretrained(str(out))
    else:
        save_file({k: v for k, v in tensors.items() if "lora_" in k}, str(out / ADAPTER_WEIGHTS_FILE))
        write_json(out / ADAPTER_CONFIG_FILE, {
            "format": "zerotune-lora", "base_run": ft.source, "rank": ft.lora_rank, "alpha": ft.lora_alpha,
            "dropout": ft.lora_dropout, "targets": ft.lora_targets})
    (out / LABELS_FILE).write_text(json.dumps(run.meta.class_names), encoding="utf-8")
