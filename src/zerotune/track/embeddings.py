"""The PROJECTOR tab: penultimate-layer features of validation examples, with labels and thumbnails.

The projector plugin reads ``projector_config.pbtxt`` in the run directory, not the event file;
tensorboardX's helpers write the metadata table and the config entry. The sprite is drawn
here: tensorboardX's ``make_sprite`` leaves the unused bottom rows of the square uninitialised.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

MAX_SPRITE = 8192  # pixels per side the projector front end accepts
TAG = "penultimate"


def sample_indices(n: int, k: int) -> np.ndarray:
    """k evenly spaced indices of n: deterministic, and spread over the whole split."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(np.int64)


def thumbnails(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) floats in [0, 1] -> square (N, 3, S, S) thumbnails small enough for one sprite."""
    from .images import square

    x = square(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float())
    per_row = math.ceil(math.sqrt(len(x)))
    side = x.shape[-1]
    limit = MAX_SPRITE // max(per_row, 1)
    if side > limit:
        x = torch.nn.functional.interpolate(x, size=(limit, limit), mode="area")
    return x


def write_projector(run_dir, step: int, features: np.ndarray, metadata: list[list[str]],
                    header: list[str], label_img: torch.Tensor | None = None) -> str:
    """Write one embedding into ``run_dir/projector/<step>/`` and register it in the config.

    Args:
        run_dir: the run directory.
        step: the global step (the embedding's name ends with it).
        features: (N, D) floats.
        metadata: N rows of strings, one column per header entry.
        header: column names (e.g. label, predicted).
        label_img: optional (N, 3, S, S) thumbnails in [0, 1].

    Returns:
        The subdirectory written, relative to ``run_dir``.
    """
    from tensorboardX.embedding import append_pbtxt, make_tsv

    subdir = f"projector/{step:06d}"
    path = os.path.join(str(run_dir), subdir)
    os.makedirs(path, exist_ok=True)
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    np.savetxt(os.path.join(path, "tensors.tsv"), features, fmt="%.6g", delimiter="\t")
    make_tsv(metadata, path, metadata_header=header)
    if label_img is not None:
        write_sprite(label_img, os.path.join(path, "sprite.png"))
    append_pbtxt(metadata, label_img, str(run_dir), subdir, step, TAG)
    return subdir


def write_sprite(label_img: torch.Tensor, path: str) -> None:
    """Tile (N, 3, S, S) thumbnails row by row into one square PNG, as the projector expects."""
    from PIL import Image

    n, _, side, _ = label_img.shape
    per_row = max(1, math.ceil(math.sqrt(n)))
    canvas = np.zeros((per_row * side, per_row * side, 3), dtype=np.uint8)
    pics = (label_img.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, c = divmod(i, per_row)
        canvas[r * side:(r + 1) * side, c * side:(c + 1) * side] = pics[i]
    Image.fromarray(canvas).save(path)
