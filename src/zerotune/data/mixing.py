"""Mixup (Zhang et al. 2018) and cutmix (Yun et al. 2019): training batches that mix pairs of examples.

Each example is paired with another of the same batch (a random permutation). Mixup blends the pair,
``lam * x + (1 - lam) * x[perm]``; cutmix pastes one box of the partner image, the same box for the
whole batch, and sets ``lam`` to the share of the image left uncovered. Either way the loss is
``lam * loss(y) + (1 - lam) * loss(y[perm])`` (`tasks/mixing.py`). ``lam`` is drawn from
Beta(alpha, alpha), one per batch, as in both papers' reference code.

Every random number comes from the generator handed in (the Trainer's augmentation generator, saved
in checkpoints), and each batch draws the same count whatever it ends up doing, so an exact resume
holds. The Beta draw goes through NumPy (torch's Beta takes no generator), seeded from that generator.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import AugmentConfig

MixedBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]  # (inputs, targets_a, targets_b, lam)


class Mixer:
    """Applies mixup or cutmix, as an `AugmentConfig` says, to a batch and its labels.

    Example::

        mix = Mixer(AugmentConfig(mixup_alpha=0.2))
        x, y_a, y_b, lam = mix(x, y, torch.Generator().manual_seed(0))
    """

    def __init__(self, config: AugmentConfig):
        self.config = config

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixedBatch:
        """Mix a batch.

        Args:
            x: float inputs (B, ...); (B, C, H, W) for cutmix.
            y: class indices (B,).
            generator: the source of randomness; on the CPU or on x's device.

        Returns:
            (inputs, targets_a, targets_b, lam); an unmixed batch (see `mix_prob`) is (x, y, y, 1.0).
        """
        cfg, g = self.config, generator
        use, switch = torch.rand(2, generator=g, device=g.device).tolist()
        perm = torch.randperm(len(x), generator=g, device=g.device).to(x.device)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g, device=g.device)))
        if use >= cfg.mix_prob:
            return x, y, y, 1.0
        if cfg.cutmix_alpha and (not cfg.mixup_alpha or switch < cfg.switch_prob):
            return cutmix(x, y, perm, float(rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha)), rng)
        lam = float(rng.beta(cfg.mixup_alpha, cfg.mixup_alpha))
        return lam * x + (1 - lam) * x[perm], y, y[perm], lam


def cutmix_box(h: int, w: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A box (top, bottom, left, right) covering about 1 - lam of an h x w image, centred at random
    and clipped to the image (so it may cover less)."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(h)), int(rng.integers(w))
    return (min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h),
            min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w))


def cutmix(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, lam: float, rng: np.random.Generator) -> MixedBatch:
    """Paste the same box of each partner image ``x[perm]`` into every image; lam becomes the uncovered share."""
    h, w = x.shape[-2:]
    top, bottom, left, right = cutmix_box(h, w, lam, rng)
    out = x.clone()
    out[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (h * w)
    return out, y, y[perm], lam


def make_mixer(config: AugmentConfig, data) -> Mixer | None:
    """Mixup/cutmix for classification with numeric inputs (cutmix: images); None when off.

    Raises:
        UserError: the data set's labels or inputs cannot be mixed.
    """
    if not config.mixing:
        return None
    from ..errors import UserError

    if data.meta.task != "classification":
        raise UserError(f"data.augment.mixup_alpha and cutmix_alpha mix class labels: they apply to "
                        f"classification, not {data.meta.task}")
    if not data.train.x.is_floating_point():
        raise UserError("data.augment.mixup_alpha and cutmix_alpha blend inputs: this data set gives token ids")
    if config.cutmix_alpha and not data.meta.is_image:
        raise UserError("data.augment.cutmix_alpha pastes image boxes: it applies to image data only")
    return Mixer(config)
