"""Reading a run directory back: its config, data metadata and model, with nothing else needed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from .config import Config, build_config
from .data.bundle import DataMeta
from .errors import UserError
from .models import create_model
from .rundir import read_json
from .train import checkpoint as ckpt


@dataclass
class LoadedRun:
    path: Path
    config: Config
    meta: DataMeta
    model: torch.nn.Module
    checkpoint: str


def read_run_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    file = run_dir / "config.yaml"
    if not file.exists():
        raise UserError(f"{run_dir} is not a zerotune run: it has no config.yaml")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{file} is not valid YAML: {str(e).splitlines()[0]}") from None
    return build_config(raw or {})


def build_model_for(config: Config, meta: DataMeta) -> torch.nn.Module:
    return create_model(config.model.name, input_shape=tuple(meta.input_shape), num_outputs=meta.num_outputs,
                        init=config.model.init, **config.model.options)


def load_run(run_dir: str | Path, checkpoint: str = "best", device="cpu") -> LoadedRun:
    """Rebuild a run's model from its directory and load the chosen checkpoint's weights.

    Args:
        run_dir: the run directory.
        checkpoint: "best" or "last" (best falls back to last when no evaluation improved).
        device: where to put the model.
    """
    if checkpoint not in ("best", "last"):
        raise UserError(f"checkpoint {checkpoint!r} is unknown; allowed: best, last")
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    meta = DataMeta.from_dict(read_json(run_dir / "meta.json"))
    model = build_model_for(config, meta)
    found = ckpt.find_checkpoint(run_dir / "checkpoints" / checkpoint)
    if found is None and checkpoint == "best":
        found, checkpoint = ckpt.find_checkpoint(run_dir / "checkpoints" / "last"), "last"
    if found is None:
        raise UserError(f"{run_dir} has no checkpoint yet (checkpoints/{checkpoint} is missing)")
    ckpt.load_weights(found, model, device)
    model.to(device).eval()
    return LoadedRun(run_dir, config, meta, model, checkpoint)
