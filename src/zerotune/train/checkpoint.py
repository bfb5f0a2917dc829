"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a directory::

    model.safetensors      weights (loadable by any safetensors reader)
    optimizer.safetensors  optimizer state tensors, RNG states           (`last` only)
    state.json             step, epoch, optimizer hyper-parameters, RNG, callback state

It is written to a temporary directory and swapped into place, so a crash never leaves a
half-written checkpoint under the real name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from ..errors import UserError

STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
TENSORS_FILE = "optimizer.safetensors"


def save_checkpoint(path: Path, model: torch.nn.Module, state: dict, tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write a checkpoint directory atomically.

    Args:
        path: the checkpoint directory, e.g. runs/x/checkpoints/last.
        model: its weights go to model.safetensors.
        state: JSON-ready training state.
        tensors: further tensors (optimizer state, RNG) for optimizer.safetensors.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        save_model(model, str(tmp / MODEL_FILE))
        if tensors:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / TENSORS_FILE))
        with open(tmp / STATE_FILE, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        _swap_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_into_place(tmp: Path, path: Path) -> None:
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(path: Path) -> Path | None:
    """The checkpoint at `path`, or the previous one if a crash hit between the two renames."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    olds = sorted(path.parent.glob(f".{path.name}.old-*"))
    return olds[-1] if olds and (olds[-1] / STATE_FILE).exists() else None


def read_state(path: Path) -> dict:
    try:
        return json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"checkpoint {path} is unreadable: {STATE_FILE}: {e}") from None


def load_weights(path: Path, model: torch.nn.Module, device="cpu") -> None:
    """Load model.safetensors into `model`, with a clear error when it does not fit."""
    file = Path(path) / MODEL_FILE
    if not file.exists():
        raise UserError(f"checkpoint {path} has no {MODEL_FILE}")
    try:
        missing, unexpected = load_model(model, str(file), strict=False, device=str(device))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{file} is not a valid safetensors file: {e}") from None
    except RuntimeError as e:
        raise UserError(f"{file} does not fit the model: {str(e).splitlines()[0]}") from None
    if missing or unexpected:
        raise UserError(f"{file} does not fit the model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")


def load_tensors(path: Path, device="cpu") -> dict[str, torch.Tensor]:
    file = Path(path) / TENSORS_FILE
    if not file.exists():
        return {}
    try:
        return load_file(str(file), device=str(device))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{file} is not a valid safetensors file: {e}") from None


# -- optimizer state <-> (JSON, tensors) --------------------------------------------------------


def optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """Split an optimizer state_dict into JSON-ready values and named tensors."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for pid, st in sd["state"].items():
        plain[str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v
            else:
                plain[str(pid)][k] = v
    return {"param_groups": sd["param_groups"], "state": plain}, tensors


def optimizer_from_parts(opt: torch.optim.Optimizer, plain: dict, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict] = {int(pid): dict(v) for pid, v in plain["state"].items()}
    for name, t in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = t
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g for g in plain["param_groups"]]
    try:
        opt.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise UserError(f"optimizer state does not fit this model/optimizer: {e}") from None
