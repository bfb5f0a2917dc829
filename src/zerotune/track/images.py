"""Image grids with captions, for inputs, augmented inputs and the worst-misclassified examples.

Captions are drawn into the pixels with Pillow, so they show in the Images tab, in reports and
in any PNG viewer; drawing with Pillow costs milliseconds where a matplotlib grid costs tenths
of a second.
"""

from __future__ import annotations

import math

import numpy as np
import torch

CELL = 96  # pixels per thumbnail side: tiny inputs (8x8 digits) are scaled up to be readable
LINE = 13  # pixels per caption line under each thumbnail


def to_display(x: torch.Tensor, mean=None, std=None) -> np.ndarray:
    """Normalised images (N, C, H, W) to displayable (N, H, W, 3) floats in [0, 1].

    Args:
        x: the images as the model sees them.
        mean, std: per-channel statistics the data was standardised with (undone first).

    Returns:
        RGB images; one channel is repeated to grey, more than three are cut to three.
    """
    x = x.detach().float().cpu()
    if mean is not None and std is not None and len(mean) == x.shape[1]:
        m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        x = x * s + m
    lo, hi = float(x.min()) if x.numel() else 0.0, float(x.max()) if x.numel() else 1.0
    if lo < -0.05 or hi > 1.05:  # not in [0, 1] (e.g. 0..255 or unnormalised): stretch the batch
        x = (x - lo) / max(hi - lo, 1e-12)
    x = x.clamp(0, 1)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] == 2:
        x = torch.cat([x, x[:, :1]], dim=1)
    return x[:, :3].permute(0, 2, 3, 1).numpy()


def caption_grid(images: np.ndarray, captions: list[str], cols: int = 8, colors: list[str] | None = None) -> np.ndarray:
    """Lay thumbnails out in a grid with a caption under each.

    Args:
        images: (N, H, W, 3) floats in [0, 1].
        captions: N strings (a newline splits a caption in two lines).
        cols: thumbnails per row.
        colors: optional N caption colours (e.g. red for a wrong prediction).

    Returns:
        (height, width, 3) uint8.
    """
    from PIL import Image, ImageDraw

    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    h, w = images.shape[1:3] if n else (1, 1)
    scale = max(1, CELL // max(h, w))
    th, tw = h * scale, w * scale
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    cap = LINE * lines + 4
    canvas = Image.new("RGB", (cols * (tw + 4) + 4, rows * (th + cap + 4) + 4), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for i in range(n):
        r, c = divmod(i, cols)
        x0, y0 = 4 + c * (tw + 4), 4 + r * (th + cap + 4)
        thumb = Image.fromarray((images[i] * 255).round().astype(np.uint8))
        if scale > 1:
            thumb = thumb.resize((tw, th), Image.NEAREST)  # keep pixels sharp
        canvas.paste(thumb, (x0, y0))
        draw.multiline_text((x0 + 1, y0 + th + 1), captions[i], fill=(colors[i] if colors else "black"),
                            font=font, spacing=1)
    return np.asarray(canvas)


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def worst_indices(probs: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The k examples with the lowest probability on their true class, worst first.

    Misclassified examples come first by construction: their true class lost to another one.
    """
    p_true = probs[np.arange(len(y)), y]
    return np.argsort(p_true, kind="stable")[:k]


def square(x: torch.Tensor) -> torch.Tensor:
    """Pad (N, C, H, W) to square with zeros (the projector's sprite needs square thumbnails)."""
    h, w = x.shape[-2:]
    if h == w:
        return x
    d = abs(h - w)
    pad = (d // 2, d - d // 2, 0, 0) if h > w else (0, 0, d // 2, d - d // 2)
    return torch.nn.functional.pad(x, pad)
