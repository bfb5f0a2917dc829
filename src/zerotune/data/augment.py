"""Random image augmentation on whole batches (B, C, H, W), in plain torch ops.

Every random number comes from the ``torch.Generator`` passed in, so a run is reproducible from
its seed, and every op is vectorised over the batch, so it runs on the GPU next to the model
without a per-sample Python loop. Ops apply in a fixed order: flip, brightness and contrast,
rotate + shift + zoom (one ``grid_sample``), crop with padding, Gaussian noise. Areas moved in from
outside the image are filled with 0 (black for images in [0, 1]; the mean for normalised ones).
An op that is off draws no random numbers, so switching one on leaves the others' draws as they were.
Mixup and cutmix mix pairs of examples and their labels: see data/mixing.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..config import AugmentConfig


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    # Drawn on the generator's own device (a CUDA generator can only fill CUDA tensors).
    u = torch.rand(n, generator=generator, device=generator.device)
    return low + (high - low) * u


class Augmenter:
    """Applies an `AugmentConfig` to batches.

    Example::

        aug = Augmenter(AugmentConfig(rotate_degrees=10, shift=0.1))
        g = torch.Generator().manual_seed(0)
        xb = aug(xb, g)   # same shape, dtype and device as before

    Args:
        config: which ops, and how strong.
        mean, std: the per-channel normalisation the batches carry (DataMeta.x_mean, x_std), so
            that brightness and contrast act on the original pixel values; None: not normalised.
    """

    def __init__(self, config: AugmentConfig, mean: list[float] | None = None, std: list[float] | None = None):
        self.config = config
        self.mean = torch.tensor(mean if mean is not None else [0.0]).view(1, -1, 1, 1)  # (1, C or 1, 1, 1)
        self.std = torch.tensor(std if std is not None else [1.0]).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch.

        Args:
            x: float tensor (B, C, H, W) on any device.
            generator: the source of randomness; on the CPU or on x's device.

        Returns:
            A new tensor of the same shape, dtype and device (x itself when nothing is enabled).
        """
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError(f"augment expects a float tensor (B, C, H, W), got {x.dtype} {tuple(x.shape)}")
        cfg = self.config
        if cfg.flip:
            x = self._flip(x, generator)
        if cfg.brightness or cfg.contrast:
            x = self._colour(x, generator)
        if cfg.rotate_degrees or cfg.shift or cfg.scale:
            x = self._affine(x, generator)
        if cfg.crop_padding:
            x = self._crop(x, generator)
        if cfg.noise_std:
            noise = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
            x = x + cfg.noise_std * noise.to(x.device)
        return x

    def _flip(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        mask = (torch.rand(x.shape[0], generator=g, device=g.device) < 0.5).to(x.device)
        return torch.where(mask[:, None, None, None], x.flip(-1), x)

    def _colour(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Brightness (pixel values x a factor) and contrast (distance from the image's mean x a
        factor), as torchvision's ColorJitter defines them, on the original pixel values."""
        b, cfg = x.shape[0], self.config
        mean, std = self.mean.to(x), self.std.to(x)
        raw = x * std + mean
        if cfg.brightness:
            raw = raw * _uniform(b, 1 - cfg.brightness, 1 + cfg.brightness, g).to(x).view(b, 1, 1, 1)
        if cfg.contrast:
            factor = _uniform(b, 1 - cfg.contrast, 1 + cfg.contrast, g).to(x).view(b, 1, 1, 1)
            grey = raw.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
            raw = grey + factor * (raw - grey)
        return (raw - mean) / std

    def _affine(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        cfg = self.config
        angle = _uniform(b, -cfg.rotate_degrees, cfg.rotate_degrees, g) * (math.pi / 180)
        # A shift of fraction s of the image is 2s in grid_sample's [-1, 1] coordinates.
        tx = _uniform(b, -2 * cfg.shift, 2 * cfg.shift, g)
        ty = _uniform(b, -2 * cfg.shift, 2 * cfg.shift, g)
        cos, sin = torch.cos(angle), torch.sin(angle)
        if cfg.scale:  # zoom by z: the output at p samples the input at p / z
            zoom = _uniform(b, 1 - cfg.scale, 1 + cfg.scale, g)
            cos, sin = cos / zoom, sin / zoom
        # theta maps output to input coordinates, both normalised to [-1, 1] per axis. The H/W
        # factors make it a true rotation in pixel space for non-square images.
        theta = torch.stack(
            [
                torch.stack([cos, -sin * (h / w), tx], dim=1),
                torch.stack([sin * (w / h), cos, ty], dim=1),
            ],
            dim=1,
        ).to(device=x.device, dtype=x.dtype)  # (B, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _crop(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        p = int(self.config.crop_padding)
        padded = F.pad(x, (p, p, p, p))  # (B, C, H+2p, W+2p), zeros
        # Top-left corner of each crop, in [0, 2p].
        oy = torch.randint(0, 2 * p + 1, (b,), generator=g, device=g.device).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (b,), generator=g, device=g.device).to(x.device)
        wp = w + 2 * p
        # Flat index of each output pixel in its own padded image: one gather for the whole
        # batch, no Python loop.
        rows = oy[:, None, None] + torch.arange(h, device=x.device)[:, None]  # (B, H, 1)
        cols = ox[:, None, None] + torch.arange(w, device=x.device)  # (B, 1, W)
        index = (rows * wp + cols).reshape(b, 1, h * w).expand(b, c, h * w)
        return padded.flatten(2).gather(2, index).view(b, c, h, w)  # (B, C, H, W)
