"""CIFAR-10 from the "python version" batches, read without trusting pickle.

The dataset (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009) ships as
Python 2 pickles: ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and ``batches.meta`` in a
folder ``cifar-10-batches-py/``. Each batch is a dict with ``data`` (uint8, N × 3072: 1024 red,
then 1024 green, then 1024 blue values, each a 32 × 32 image row by row) and ``labels``.

``pickle.load`` would run any callable the file names, so the project never calls it on files it
did not write. `RestrictedUnpickler` resolves only the few globals that rebuilding a NumPy array
needs and refuses every other one.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import RawDataset

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
FOLDER = "cifar-10-batches-py"

# The function numpy itself names in an ndarray's pickle (numpy.core in 1.x, numpy._core in 2.x).
_np_reconstruct = np.ndarray.__reduce__(np.empty(0))[0]


def _latin1_encode(text, encoding="latin1"):
    """Stand-in for ``_codecs.encode``, accepting only what a Python 3 protocol-2 pickle needs.

    Python 3 writes ``bytes`` under protocol 2 as ``_codecs.encode(str, "latin1")``; the real
    ``_codecs.encode`` could be asked for any codec, so this allows exactly str → latin-1 bytes.
    """
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused _codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


# Why these globals are safe to allow:
# - numpy's `_reconstruct(subtype, shape, dtype)` only allocates an empty array of `subtype`; the
#   only classes a pickle can name here are ndarray and dtype, and numpy refuses a non-ndarray
#   subtype. `ndarray.__setstate__` then copies raw bytes into it (or, for dtype=object, a list
#   of objects that were themselves built by this same restricted unpickler).
# - `numpy.dtype(spec, align, copy)` parses a type description; it runs no user code.
# - `numpy.ndarray(shape, dtype, buffer, offset, strides)` checks the buffer bounds itself.
# Nothing here imports a module, opens a file or calls back into Python code the file chooses, and
# the loader still checks the dtype and shape of what comes out.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,  # numpy 1.x and Python 2 pickles
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,  # numpy 2.x pickles
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,  # bytes in Python 3 protocol-2 pickles, see above
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers, numbers, strings, bytes and NumPy arrays."""

    def find_class(self, module: str, name: str):
        # Every global a pickle references goes through here; anything unlisted is refused, so a
        # file naming os.system, builtins.eval or a class with a hostile __reduce__ cannot run it.
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def restricted_load(path: str | os.PathLike) -> object:
    """Unpickle a data file with `RestrictedUnpickler`.

    Python 2 ``str`` objects are decoded as latin-1 (numpy's own advice for Python 2 pickles), so
    dict keys come back as ``str``; Python 3 ``bytes`` keys stay ``bytes``.

    Raises:
        UserError: the file is missing, corrupt, or names a global that is not allowed.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except pickle.UnpicklingError as e:
        raise UserError(f"{path}: refused or corrupt pickle ({e}); expected a CIFAR-10 batch") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
        # Truncated files raise EOFError; malformed opcodes or arguments raise the others.
        raise UserError(f"{path} is not a readable CIFAR-10 pickle ({type(e).__name__}: {e})") from None


def _str_keys(obj: object, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise UserError(f"{path} holds a {type(obj).__name__}; expected a dict (a CIFAR-10 batch)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _read_batch_u8(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 (N, 3072), labels int64 (N,)) of one batch, validated."""
    batch = _str_keys(restricted_load(path), path)
    for key in ("data", "labels"):
        if key not in batch:
            raise UserError(f"{path} has no {key!r} entry; expected a CIFAR-10 batch with data and labels")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: 'data' is {got}; expected a uint8 array of shape (N, 3072)")
    try:
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{path}: 'labels' must be a list of integers") from None
    if labels.shape != (len(data),):
        raise UserError(f"{path} has {len(data)} images but 'labels' has shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(
            f"{path} has labels in [{labels.min()}, {labels.max()}]; expected 0..{num_classes - 1}"
        )
    return data, labels


def _to_images(data: np.ndarray) -> np.ndarray:
    # 3072 = 3 channels × 32 rows × 32 columns, channel-major: exactly (C, H, W).
    x = data.reshape(-1, 3, 32, 32).astype(np.float32)
    x /= np.float32(255)  # divide, not multiply by 1/255: exactly k/255 rounded once
    return x


def read_batch(path: str | os.PathLike, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file.

    Args:
        path: a ``data_batch_*`` or ``test_batch`` file.
        num_classes: labels must lie in [0, num_classes).

    Returns:
        (x, y): x float32 (N, 3, 32, 32) in [0, 1]; y int64 (N,).

    Raises:
        UserError: the file is not a well-formed CIFAR-10 batch.
    """
    data, labels = _read_batch_u8(Path(path), num_classes)
    return _to_images(data), labels


def read_meta(path: str | os.PathLike) -> list[str]:
    """The class names from ``batches.meta``."""
    path = Path(path)
    meta = _str_keys(restricted_load(path), path)
    names = meta.get("label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise UserError(f"{path}: expected a 'label_names' list of strings")
    return [_text(n) for n in names]


def load_cifar10_dir(path: str | os.PathLike) -> RawDataset:
    """Load CIFAR-10 from ``cifar-10-batches-py/`` (or from a folder that contains it).

    Args:
        path: the batches folder or its parent.

    Returns:
        RawDataset with x float32 (50000, 3, 32, 32) in [0, 1], y int64, the official test split in
        ``test`` and the class names from ``batches.meta``.

    Raises:
        UserError: a file is missing or not a well-formed CIFAR-10 batch.
    """
    directory = Path(path)
    if not (directory / META).is_file() and (directory / FOLDER).is_dir():
        directory = directory / FOLDER
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory; expected {FOLDER}/ with the CIFAR-10 batches")
    missing = [n for n in [*TRAIN_BATCHES, TEST_BATCH, META] if not (directory / n).is_file()]
    if missing:
        raise UserError(
            f"{directory} lacks {', '.join(missing)}; expected data_batch_1..5, test_batch and "
            "batches.meta (the CIFAR-10 python version)"
        )
    names = read_meta(directory / META)
    # Concatenate the uint8 batches before converting, so float32 copies are made only once.
    parts = [_read_batch_u8(directory / n, len(names)) for n in TRAIN_BATCHES]
    x = _to_images(np.concatenate([p[0] for p in parts]))
    y = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_batch(directory / TEST_BATCH, len(names))
    return RawDataset(
        x=x, y=y, task="classification", class_names=names, test=(x_test, y_test),
        extra={"source": "cifar10", "path": str(directory)},
    )  # fmt: skip
