"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a directory (its file names are defined with the run directory's, in run/files.py)::

    model.safetensors      weights (loadable by any safetensors reader)
    optimizer.safetensors  optimizer state tensors, RNG states           (`last` only)
    state.json             step, epoch, optimizer hyper-parameters, RNG, callback state
    checksums.json         size and CRC32C of each file above (run/checksums.py), written last

It is written to a temporary directory and swapped into place, so a crash never leaves a
half-written checkpoint under the real name: a directory under the real name was complete, and a
file of it that is missing or differs from its checksum was damaged since. `CheckpointWriter`
takes a snapshot on the training thread (a copy of the tensors) and does the serialising and
fsync on a background thread.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import UserError, format_validation_error
from ..run.atomic import TEMPORARY_GLOB, error_at, replace_dir, temporary_dir
from ..run.checksums import ALGORITHM as CHECKSUM_ALGORITHM
from ..run.checksums import RESUME_FILES, SAVED_WITH, WEIGHTS_FILES, Damaged, checked_while, write_checksums
from ..run.files import CHECKPOINT_NAMES, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE


def model_tensors(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A copy of the state dict with tied tensors stored once, and the map {dropped name: kept name}.

    safetensors refuses tensors that share memory (e.g. tied embedding and output weights).
    """
    kept: dict[tuple, str] = {}
    tensors, aliases = {}, {}
    for name, t in model.state_dict().items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() and key in kept:
            aliases[name] = kept[key]
            continue
        kept[key] = name
        tensors[name] = t.detach().to("cpu", copy=True).contiguous()
    return tensors, aliases


def save_checkpoint(path: Path, model_sd: dict[str, torch.Tensor], aliases: dict[str, str], state: dict,
                    tensors: dict[str, torch.Tensor] | None = None, tmp: Path | None = None) -> None:
    """Write a checkpoint directory atomically from already-copied tensors.

    Args:
        path: the checkpoint directory, e.g. runs/x/checkpoints/last.
        model_sd: weights (see `model_tensors`).
        aliases: tied-weight names to restore on load.
        state: JSON-ready training state.
        tensors: further tensors (optimizer state, RNG) for optimizer.safetensors.
        tmp: a `temporary_dir` already holding other parts (FSDP's shards); default: a new one.
    """
    path = Path(path)
    try:
        tmp = tmp or temporary_dir(path)
        _save_tensors(model_sd, tmp / MODEL_FILE, metadata={"aliases": json.dumps(aliases)})
        if tensors:
            _save_tensors(tensors, tmp / OPTIMIZER_FILE)
        with open(tmp / STATE_FILE, "w", encoding="utf-8") as f:
            json.dump({**state, SAVED_WITH: CHECKSUM_ALGORITHM}, f)  # a deleted checksums.json is then damage
        write_checksums(tmp)  # last: it covers every other file, FSDP's shards included
        for name in os.listdir(tmp):  # durable before the rename makes it visible
            if (tmp / name).is_dir():
                continue  # FSDP's shards: DCP has already synced its files
            fd = os.open(tmp / name, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        replace_dir(tmp, path)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # a full or read-only disk, named by the checkpoint rather than its temporary
            raise error_at(e, path) from e
        raise


def first_save(checkpoints: Path) -> bool:
    """Whether nothing was saved into the `checkpoints` directory yet (it is missing or empty)."""
    checkpoints = Path(checkpoints)
    return not checkpoints.exists() or not any(checkpoints.iterdir())


def save_first_checkpoints(checkpoints: Path, best: tuple, last: tuple) -> None:
    """A run's first save of `best` and `last` (each `save_checkpoint`'s arguments after the path): both
    written into a temporary directory that is renamed into place as `checkpoints` at once. A kill
    in between would otherwise leave a best without a last: a run neither new (its ``checkpoints/``
    is missing or empty, so it starts again) nor resumable."""
    checkpoints = Path(checkpoints)
    tmp = temporary_dir(checkpoints)
    try:
        best_name, last_name = CHECKPOINT_NAMES
        save_checkpoint(tmp / best_name, *best)
        save_checkpoint(tmp / last_name, *last)
        if checkpoints.exists():  # empty (see first_save): rename replaces an empty directory
            checkpoints.rmdir()
        os.replace(tmp, checkpoints)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, FileNotFoundError):
            raise error_at(e, checkpoints) from e
        raise


def _save_tensors(tensors: dict[str, torch.Tensor], file: Path, metadata: dict | None = None) -> None:
    """safetensors' `save_file`, with a failed write raised as the OSError it was (its errno is in the text)."""
    try:
        save_file(tensors, str(file), metadata=metadata)
    except SafetensorError as e:
        code = re.search(r"os error (\d+)", str(e))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(file)) from e


class CheckpointWriter:
    """Writes checkpoints on a background thread, one at a time, in the order submitted.

    `submit` copies nothing itself: callers pass tensors that are already private copies. A new
    submission waits for the previous write, so at most one snapshot is held in memory.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, *args, write=None) -> None:
        """Write a checkpoint with `write` (default `save_checkpoint`) called on `args`, in the background."""
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(write or save_checkpoint, args),
                                        name="zerotune-checkpoint")
        self._thread.start()

    def _write(self, write, args) -> None:
        try:
            write(*args)
        except BaseException as e:  # re-raised on the training thread by wait()
            self._error = e

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            err, self._error = self._error, None
            raise err


def remove_partial_writes(directory: Path) -> None:
    """Delete temporary checkpoint directories that a killed process left behind."""
    for tmp in Path(directory).glob(TEMPORARY_GLOB):
        shutil.rmtree(tmp, ignore_errors=True)


def find_checkpoint(path: Path) -> Path | None:
    """The checkpoint at `path`, or the previous one if a crash hit between the two renames; None if neither.

    A directory under the real name is returned even when files of it are missing: it was renamed
    into place complete, so it is damaged, not absent (`run.checksums.check_files` says what is wrong).
    """
    path = Path(path)
    if path.is_dir():
        return path
    olds = sorted(path.parent.glob(f".{path.name}.old-*"))
    return olds[-1] if olds and (olds[-1] / STATE_FILE).exists() else None


def read_state(path: Path) -> dict:
    """A checkpoint's state.json, which must hold an object (`load_checkpoint` checks its fields)."""
    try:
        raw = json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # ValueError: not JSON, or not UTF-8
        raise UserError(f"checkpoint {path} is unreadable: {STATE_FILE}: {e}") from None
    if not isinstance(raw, dict):
        raise UserError(f"checkpoint {path} is invalid: {STATE_FILE} must hold an object, not {type(raw).__name__}")
    return raw


# -- state.json, validated like the config ------------------------------------------------------

class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Progress(_Part):
    """Where the loop stands (see `TrainState.progress_dict`)."""

    # StrictInt: 3.5, "3" and true are refused, not rounded or converted
    step: StrictInt = Field(ge=0)
    epoch: StrictInt = Field(ge=0)
    batch_in_epoch: StrictInt = Field(ge=0)
    metrics: dict[str, float | None] = {}
    num_evals: StrictInt = Field(0, ge=0)
    best: float | None = None
    best_step: StrictInt | None = Field(None, ge=0)
    elapsed: float = Field(0.0, ge=0)
    stop_requested: StrictBool = False
    stop_reason: str | None = None


class ParamGroup(BaseModel):
    model_config = ConfigDict(extra="allow")

    params: list[StrictInt]


class OptimizerState(_Part):
    param_groups: list[ParamGroup]
    state: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _ids_are_integers(self):
        bad = [k for k in self.state if not k.isdigit()]
        if bad:
            raise ValueError(f"parameter ids must be whole numbers, got {bad[0]!r}")
        return self


Word = Annotated[StrictInt, Field(ge=0, lt=2**32)]


class RngState(_Part):
    """Python's and NumPy's generator states, as lists (see `env.rng_state`)."""

    python: tuple[StrictInt, list[Word], float | None]
    # NumPy reads its position unchecked (one past 624 crashes the process), so each part is bounded here.
    numpy: tuple[Literal["MT19937"], Annotated[list[Word], Field(min_length=624, max_length=624)],
                 Annotated[StrictInt, Field(ge=0, le=624)], Annotated[StrictInt, Field(ge=0, le=1)], float]

    @model_validator(mode="after")
    def _states_load(self):
        # Tried on private generators, so a bad state is refused before anything is restored.
        try:
            random.Random().setstate((self.python[0], tuple(self.python[1]), self.python[2]))
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"python state does not load: {e}") from None
        name, keys, pos, has_gauss, cached = self.numpy
        try:
            np.random.RandomState().set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"numpy state does not load: {e}") from None
        return self


class PlateauState(_Part):
    """The `plateau` schedule's state (see `train/plateau.py`)."""

    best: float | None = None
    bad: StrictInt = Field(ge=0)
    multiplier: float = Field(gt=0, le=1)


class EpochSums(_Part):
    """The running sums of the epoch a checkpoint falls in, one entry per rank (so `train/epoch_loss`
    covers the whole epoch after a mid-epoch resume)."""

    loss_sums: list[float]
    micro_batches: list[Annotated[StrictInt, Field(ge=0)]]

    @model_validator(mode="after")
    def _one_entry_per_rank(self):
        if len(self.loss_sums) != len(self.micro_batches) or not self.loss_sums:
            raise ValueError("loss_sums and micro_batches need one entry per rank each")
        return self


class StateFile(_Part):
    """The whole of a `last` checkpoint's state.json."""

    progress: Progress
    epoch_sums: EpochSums | None = None  # absent in checkpoints written before it was kept
    optimizer: OptimizerState
    rng: RngState
    scaler: dict[str, Any] | None = None
    schedule: PlateauState | None = None
    callbacks: dict[str, dict[str, Any]] = {}


@dataclass
class Checkpoint:
    """A `last` checkpoint read and checked in full, before anything of it is applied or written."""

    path: Path
    state: StateFile
    weights: dict[str, torch.Tensor]
    tensors: dict[str, torch.Tensor]  # optimizer state and RNG tensors


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a `last` checkpoint and check each part: state.json, weights, optimizer and RNG tensors.

    Raises:
        UserError: naming the file and what is wrong with it, in one line.
    """
    # every file against its checksum, on a second thread while they are read; damage wins over parse errors
    return checked_while(path, lambda: _read_checkpoint(path), RESUME_FILES)


def _read_checkpoint(path: Path) -> Checkpoint:
    raw = read_state(path)
    try:
        state = StateFile.model_validate(raw)
    except ValidationError as e:
        detail = format_validation_error(e, schema=StateFile)
        detail = detail if len(detail) <= 300 else detail[:300] + "..."
        raise UserError(f"checkpoint {path} is invalid: {STATE_FILE}: {detail}") from None
    weights = read_weights(path, check=False)
    tensors = load_tensors(path)
    try:  # the CPU generator's state, tried on a private generator
        torch.Generator().set_state(tensors["rng.torch"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise UserError(f"checkpoint {path} is invalid: {OPTIMIZER_FILE}: rng.torch does not load "
                        f"({str(e).splitlines()[0]})") from None
    return Checkpoint(Path(path), state, weights, tensors)


def read_weights(path: Path, device="cpu", check: bool = True) -> dict[str, torch.Tensor]:
    """model.safetensors as a state dict, tied names restored.

    Args:
        path: the checkpoint directory.
        device: where to put the tensors.
        check: first check the checkpoint's files are all there and the weights match their checksum
            (False: the caller has checked every file already).
    """
    file = Path(path) / MODEL_FILE
    if check:  # the checksum on a second thread, beside the read (one pass over memory, not two in a row)
        return checked_while(path, lambda: read_weights(path, device, check=False), WEIGHTS_FILES, [MODEL_FILE])
    if not file.exists():
        raise Damaged(f"checkpoint {path} is damaged: {MODEL_FILE} is missing")
    try:
        sd = load_file(str(file), device=str(device))
        with safe_open(str(file), "pt") as f:
            aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise UserError(f"{file} is not a valid safetensors file: {e}") from None
    for name, kept in aliases.items():
        if kept in sd:
            sd[name] = sd[kept]
    return sd


def fit_weights(model: torch.nn.Module, sd: dict[str, torch.Tensor], file) -> None:
    """Load a state dict into `model`, with a clear error when it does not fit."""
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:300]
        raise UserError(f"{file} does not fit the model: {detail}") from None


def load_weights(path: Path, model: torch.nn.Module, device="cpu") -> None:
    """Load model.safetensors into `model`, with a clear error when it does not fit.

    The checksum is computed beside both the read and the copy into `model`; on `Damaged` the model
    holds the damaged weights and must not be used.
    """
    fit = lambda: fit_weights(model, read_weights(path, device, check=False), Path(path) / MODEL_FILE)  # noqa: E731
    checked_while(path, fit, WEIGHTS_FILES, [MODEL_FILE])


def load_tensors(path: Path, device="cpu") -> dict[str, torch.Tensor]:
    file = Path(path) / OPTIMIZER_FILE
    if not file.exists():
        return {}
    try:
        return load_file(str(file), device=str(device))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{file} is not a valid safetensors file: {e}") from None


# -- optimizer state <-> (JSON, tensors) --------------------------------------------------------


def optimizer_to_parts(opt: torch.optim.Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
    """Split an optimizer state_dict into JSON-ready values and private copies of its tensors."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for pid, st in sd["state"].items():
        plain[str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().to("cpu", copy=True).contiguous()
            else:
                plain[str(pid)][k] = v
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return {"param_groups": groups, "state": plain}, tensors


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
