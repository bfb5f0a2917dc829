"""MNIST and Fashion-MNIST from their IDX files, plain or gzipped.

The IDX format (LeCun et al., "Gradient-based learning applied to document recognition", 1998;
described on the MNIST page) is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import RawDataset

# IDX type byte → big-endian numpy dtype.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
VARIANTS = {"mnist": MNIST_CLASSES, "fashion_mnist": FASHION_MNIST_CLASSES}

# (split, kind) → base file name; the unpacked Kaggle copies spell "-idx3" as ".idx3".
_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def _read_maybe_gzip(path: Path) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip magic (whatever its name)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected an IDX file") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        # EOFError: truncated download; BadGzipFile (an OSError) / zlib.error: corrupt bytes.
        raise UserError(f"{path} is a corrupt or truncated gzip file ({e})") from None


def _describe(ndim: int | None, dtype: str | None) -> str:
    """What the caller expects, with the magic number when it is fully determined."""
    codes = [c for c, t in _IDX_TYPES.items() if dtype is not None and t.newbyteorder("=") == np.dtype(dtype)]
    if ndim is not None and codes:
        return f"an IDX file with magic 0x0000{codes[0]:02X}{ndim:02X}"
    return "an IDX file"


def read_idx(path: str | os.PathLike, ndim: int | None = None, dtype: str | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip, detected by its first bytes) into a native-endian array.

    Args:
        path: the IDX file.
        ndim: the number of dimensions the caller expects (3 for images, 1 for labels), or None.
        dtype: the element type the caller expects (e.g. "uint8"), or None for any IDX type.

    Returns:
        The array with the shape given in the header.

    Raises:
        UserError: when the file is missing, not IDX, not of the expected kind, or truncated.
    """
    path = Path(path)
    data = _read_maybe_gzip(path)
    expected = _describe(ndim, dtype)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise UserError(f"{path} is not {expected}: its first bytes are {data[:4].hex()}")
    type_code, file_ndim = data[2], data[3]
    if type_code not in _IDX_TYPES:
        raise UserError(f"{path}: unknown IDX element type 0x{type_code:02X}; expected {expected}")
    if file_ndim == 0:
        raise UserError(f"{path}: IDX header declares 0 dimensions; expected {expected}")
    if ndim is not None and file_ndim != ndim:
        raise UserError(
            f"{path} holds a {file_ndim}-dimensional IDX array; expected {ndim} dimensions "
            f"({'images' if ndim == 3 else 'labels' if ndim == 1 else 'array'}), so {expected}"
        )
    elem = _IDX_TYPES[type_code]
    if dtype is not None and elem.newbyteorder("=") != np.dtype(dtype):
        raise UserError(f"{path} holds {elem.newbyteorder('=')} values; expected {dtype}, so {expected}")
    header = 4 + 4 * file_ndim
    if len(data) < header:
        raise UserError(f"{path} is truncated inside its IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=file_ndim, offset=4))
    count = math.prod(shape)  # exact Python int: a hostile header cannot overflow it
    want = header + count * elem.itemsize
    if len(data) != want:
        what = "truncated" if len(data) < want else "longer than its header says"
        raise UserError(
            f"{path} is {what}: header shape {shape} needs {want} bytes, the file has {len(data)}"
        )
    arr = np.frombuffer(data, dtype=elem, count=count, offset=header).reshape(shape)
    # Native byte order and a writable copy, so callers can hand it straight to torch.
    return arr.astype(elem.newbyteorder("="))


def _find(directory: Path, base: str) -> Path:
    """The path of one of the four standard files, trying the usual spellings and the raw/ folder."""
    dotted = base.replace("-idx", ".idx")
    candidates = []
    for folder in (directory, directory / "raw"):
        for name in (base, base + ".gz", dotted, dotted + ".gz"):
            candidates.append(folder / name)
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(
        f"{directory} has no {base} (also looked for {base}.gz, {dotted}[.gz] and raw/); "
        "expected the four MNIST IDX files there (zerotune can download them)"
    )


def _load_split(directory: Path, split: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    img_path = _find(directory, _FILES[(split, "images")])
    lab_path = _find(directory, _FILES[(split, "labels")])
    images = read_idx(img_path, ndim=3, dtype="uint8")  # (N, H, W)
    labels = read_idx(lab_path, ndim=1, dtype="uint8")  # (N,)
    if len(images) != len(labels):
        raise UserError(f"{img_path} has {len(images)} images but {lab_path} has {len(labels)} labels")
    if labels.size and labels.max() >= n_classes:
        raise UserError(f"{lab_path} has label {labels.max()}; expected labels 0..{n_classes - 1}")
    # float32 in [0, 1] with a channel axis: (N, H, W) → (N, 1, H, W).
    x = images[:, None].astype(np.float32)
    x /= np.float32(255)  # divide, not multiply by 1/255: exactly k/255 rounded once
    return x, labels.astype(np.int64)


def load_mnist_dir(path: str | os.PathLike, variant: str = "mnist") -> RawDataset:
    """Load MNIST or Fashion-MNIST from a directory holding the four standard IDX files.

    Files may be plain or gzipped, named ``train-images-idx3-ubyte[.gz]`` and so on
    (``train-images.idx3-ubyte`` is accepted too), directly in ``path`` or in ``path/raw``.

    Args:
        path: the directory.
        variant: "mnist" or "fashion_mnist"; chooses the class names.

    Returns:
        RawDataset with x float32 (N, 1, 28, 28) in [0, 1], y int64, the official test split
        in ``test`` and ten class names.

    Raises:
        UserError: unknown variant, missing directory or file, or a corrupt file.
    """
    if variant not in VARIANTS:
        raise UserError(f"unknown MNIST variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    directory = Path(path)
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory; expected a folder with the MNIST IDX files")
    names = VARIANTS[variant]
    x, y = _load_split(directory, "train", len(names))
    x_test, y_test = _load_split(directory, "test", len(names))
    if x.shape[1:] != x_test.shape[1:]:
        raise UserError(f"{directory}: train images are {x.shape[2:]} but test images are {x_test.shape[2:]}")
    return RawDataset(
        x=x, y=y, task="classification", class_names=list(names), test=(x_test, y_test),
        extra={"source": variant, "path": str(directory)},
    )  # fmt: skip
