"""The run directory: the self-contained unit that eval, finetune, export and serve read.

Layout::

    runs/<name>/
        config.yaml            resolved config
        meta.json              data metadata (shapes, classes, normalisation statistics)
        metrics.json           final metrics
        events.out.tfevents.*  TensorBoard events
        checkpoints/{best,last}/
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from ..errors import UserError


def new_run_name(prefix: str) -> str:
    """A unique, sortable run name such as ``digits-cnn-20261123-141502``."""
    return f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def create_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create ``root/name``; refuse to reuse a directory so no earlier run is overwritten.

    Raises:
        UserError: when the directory already exists.
    """
    path = Path(root) / name
    if path.exists():
        raise UserError(
            f"run directory {path} already exists; choose another --name or pass --resume {path}"
        )
    try:
        path.mkdir(parents=True)
    except OSError as e:  # a read-only or full disk, or a file where a directory should be
        raise UserError(f"cannot create run directory {path}: {e.strerror or e} (check --runs-dir / log.dir)") from None
    return path


def clear_run_outputs(run_dir: str | os.PathLike) -> None:
    """Remove what an attempt that never reached a checkpoint wrote while training: events, checkpoints, metrics.

    The files that describe the run (config.yaml, meta.json, ...) are written again by the new attempt.
    """
    run_dir = Path(run_dir)
    for events in run_dir.glob("events.out.tfevents.*"):
        events.unlink()
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    (run_dir / "metrics.json").unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _finite(obj):
    """``obj`` with NaN and infinite floats as None: Python writes them as NaN/Infinity, which is not JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj) -> None:
    """Atomically write ``obj`` as indented, strict JSON (a NaN or infinite float is written as null)."""
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike):
    """Read a JSON file, turning a missing or corrupt file into a UserError."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None
