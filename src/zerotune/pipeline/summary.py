"""`zerotune summary`: the layer table of the model a recipe or a run directory describes."""

from __future__ import annotations

from pathlib import Path

from ..config import apply_overrides, build_config, load_config
from ..errors import UserError
from ..models.summary import ModelSummary, summarize


def model_summary(target: str | Path | None = None, overrides: list[str] | None = None) -> ModelSummary:
    """Summarise the model of a recipe (or the defaults) or of a run directory.

    Args:
        target: a TOML/YAML recipe, a run directory, or None for the built-in defaults.
        overrides: ``group.field=value`` changes to a recipe (not to a run).

    Returns:
        The summary on one example. A fine-tune shows the parameters that never train in it as frozen.
    """
    if target is not None and Path(target).is_dir():
        if overrides:
            raise UserError("--set changes a recipe; a run directory is summarised as it was trained")
        return _run_summary(Path(target))
    return _recipe_summary(target, list(overrides or []))


def _recipe_summary(recipe: str | Path | None, overrides: list[str]) -> ModelSummary:
    from ..compute.threads import torch_threads
    from .train import prepare

    config = load_config(recipe, overrides)
    if config.finetune is not None:  # the before-training baseline would train a probe: not needed here
        config = build_config(apply_overrides(config.to_dict(), ["finetune.baseline=false"]))
    with torch_threads(config.train.threads, "train.threads"):
        run = prepare(config)
        if run.freeze is not None:
            run.freeze.apply(run.model, None)  # every parameter that trains at some epoch
        return summarize(run.model.cpu(), run.data.train.sample_inputs(1).cpu())


def _run_summary(run_dir: Path) -> ModelSummary:
    from ..modes.registry import modes_for
    from ..run.files import RunDir
    from ..runload.load import build_model_for, read_meta, read_run_config

    config = read_run_config(run_dir)
    if not RunDir(run_dir).meta.exists():
        raise UserError(f"{run_dir} is not a complete run: it has no {RunDir(run_dir).meta.name}")
    meta = read_meta(run_dir)
    model = build_model_for(config, meta, run_dir)  # the weights do not change the table: none are loaded
    modes = modes_for(config)
    for mode in modes:
        mode.as_trained(model, config)
    return summarize(model, modes[0].summary_input(meta))
