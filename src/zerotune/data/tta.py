"""The fixed views of test-time augmentation (`zerotune eval --tta`).

A model trained with an augmentation learned to be invariant to it; averaging its predictions over
a few fixed versions of each test image then smooths out its errors. The views follow the run's own
``data.augment``, so a model is never shown a transformation it did not train on:

- the plain image, always;
- its mirror image, when ``flip`` is on;
- shifts left, right, up and down by half of ``shift`` (a fraction of the size), when it is set,
  or else by one pixel when ``crop_padding`` is on;
- rotations by ± half of ``rotate_degrees``, when it is set;
- zooms by 1 ± half of ``scale``, when it is set.

Every view is deterministic. Geometric views resample with ``grid_sample`` exactly as training does
(areas moved in from outside are 0, the mean of normalised inputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..config import AugmentConfig

View = tuple[str, Callable[[torch.Tensor], torch.Tensor]]


def tta_views(cfg: AugmentConfig) -> list[View]:
    """The named views for a run trained with `cfg`, the plain one first."""
    views: list[View] = [("plain", lambda x: x)]
    if cfg.flip:
        views.append(("flip", lambda x: x.flip(-1)))
    if cfg.shift or cfg.crop_padding:  # half the trained shift; crop_padding's whole pixel
        step, label = (cfg.shift / 2, f"{cfg.shift * 50:g}%") if cfg.shift else (1, "1px")
        for name, dx, dy in (("right", 1, 0), ("left", -1, 0), ("down", 0, 1), ("up", 0, -1)):
            views.append((f"shift {name} {label}", _affine_view(shift=(dx * step, dy * step, bool(cfg.shift)))))
    if cfg.rotate_degrees:
        half = cfg.rotate_degrees / 2
        views += [(f"rotate {a:+g} deg", _affine_view(degrees=a)) for a in (half, -half)]
    if cfg.scale:
        views += [(f"zoom x{z:g}", _affine_view(zoom=z)) for z in (1 - cfg.scale / 2, 1 + cfg.scale / 2)]
    return views


def _affine_view(degrees: float = 0.0, zoom: float = 1.0, shift: tuple[float, float, bool] = (0, 0, True)):
    """A fixed rotation, zoom and shift of (B, C, H, W) batches, resampled as data/augment.py does.

    `shift` is (right, down, as_fraction): a fraction of the image's size, or else whole pixels.
    """

    def view(x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        a = math.radians(degrees)
        cos, sin = math.cos(a) / zoom, math.sin(a) / zoom
        dx, dy = (shift[0], shift[1]) if shift[2] else (shift[0] / w, shift[1] / h)  # fractions of the size
        # theta maps output to input coordinates in [-1, 1], where the image spans 2: content moves
        # right by dx when the output samples the input 2 dx to the left
        theta = torch.tensor([[cos, -sin * h / w, -2 * dx],
                              [sin * w / h, cos, -2 * dy]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(b, 2, 3), list(x.shape), align_corners=False)  # (B, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return view
