import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from zerotune.config import AugmentConfig, load_config
from zerotune.data.augment import Augmenter
from zerotune.errors import UserError

ALL_ON = AugmentConfig(flip=True, rotate_degrees=15, shift=0.1, crop_padding=2, noise_std=0.05)


def _batch(b=8, c=3, h=12, w=10, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def test_same_seed_same_output_and_shape_dtype():
    x = _batch()
    aug = Augmenter(ALL_ON)
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype
    x64 = x.double()
    assert aug(x64, torch.Generator().manual_seed(7)).dtype == torch.float64


def test_disabled_is_identity():
    x = _batch()
    assert not AugmentConfig().enabled and ALL_ON.enabled
    assert torch.equal(Augmenter(AugmentConfig())(x, torch.Generator().manual_seed(0)), x)
    assert torch.equal(Augmenter(AugmentConfig(rotate_degrees=0, shift=0))(x, torch.Generator()), x)


def test_flip_mirrors_about_half():
    x = _batch(b=200)
    out = Augmenter(AugmentConfig(flip=True))(x, torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x)])
    assert bool((flipped ^ kept).all())  # each image is exactly mirrored or exactly unchanged
    assert 70 < int(flipped.sum()) < 130
    assert out[flipped][0, 0, 3, 0] == x[flipped][0, 0, 3, -1]


def test_tiny_rotation_is_near_identity_and_rotation_rotates():
    # Identity theta via grid_sample reproduces the image (align_corners=False samples pixel centres).
    x = _batch()
    out = Augmenter(AugmentConfig(rotate_degrees=1e-6))(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x, atol=1e-4, rtol=0)
    # A single bright pixel right of centre ends up somewhere else after a large rotation,
    # at the same distance from the centre (pixel-space rotation, non-square image).
    img = torch.zeros(1, 1, 21, 31)
    img[0, 0, 10, 25] = 1.0
    aug = Augmenter(AugmentConfig(rotate_degrees=90))
    g = torch.Generator().manual_seed(3)
    out = aug(img.expand(64, 1, 21, 31).contiguous(), g)
    ys, xs = torch.meshgrid(torch.arange(21.0), torch.arange(31.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    cy = (out[:, 0] * ys).sum((1, 2)) / mass
    cx = (out[:, 0] * xs).sum((1, 2)) / mass
    radius = ((cy - 10) ** 2 + (cx - 15) ** 2).sqrt()
    keep = mass > 0.5  # pixel not rotated out of the frame
    torch.testing.assert_close(radius[keep], torch.full_like(radius[keep], 10.0), atol=0.6, rtol=0)
    assert (cy[keep] - 10).abs().max() > 5  # it really moved


def test_shift_moves_content():
    img = torch.zeros(64, 1, 20, 20)
    img[:, 0, 10, 10] = 1.0
    out = Augmenter(AugmentConfig(shift=0.2))(img, torch.Generator().manual_seed(0))
    # Shifts are whole or fractional pixels up to 0.2 * 20 = 4; the mass stays in the frame.
    torch.testing.assert_close(out.sum((1, 2, 3)), torch.ones(64), atol=1e-5, rtol=0)
    peak = out[:, 0].flatten(1).argmax(1)
    assert len(set(peak.tolist())) > 10
    assert ((peak // 20 - 10).abs() <= 4).all() and ((peak % 20 - 10).abs() <= 4).all()


def test_crop_with_padding_is_integer_translation():
    x = _batch(b=64, h=8, w=8)
    p = 2
    out = Augmenter(AugmentConfig(crop_padding=p))(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    seen = set()
    for i in range(64):  # each output equals exactly one window of the padded image
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]  # fmt: skip
        assert hits
        seen.update(hits)
    assert len(seen) > 10


def test_noise_std():
    x = torch.full((64, 3, 32, 32), 0.5)
    out = Augmenter(AugmentConfig(noise_std=0.1))(x, torch.Generator().manual_seed(0))
    d = out - x
    assert abs(d.std().item() - 0.1) < 0.002 and abs(d.mean().item()) < 0.002


def test_config_validation_and_input_check():
    for bad in ("rotate_degrees=-1", "shift=1.5", "crop_padding=-2", "noise_std=-0.1"):
        with pytest.raises(UserError, match="augment."):
            load_config(overrides=[f"data.augment.{bad}"])
    with pytest.raises(ValueError, match=r"float tensor \(B, C, H, W\)"):
        Augmenter(ALL_ON)(torch.zeros(3, 4, 4), torch.Generator())


class _OpCounter(TorchDispatchMode):
    """Counts the tensor operations that reach the dispatcher."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def _ops_for(batch: int) -> int:
    x = torch.rand(batch, 3, 32, 32)
    with _OpCounter() as counter:
        Augmenter(ALL_ON)(x, torch.Generator().manual_seed(0))
    return counter.calls


def test_vectorised_the_same_operations_for_any_batch_size():
    # A per-image Python loop would issue ops in proportion to the batch; batched ops do not.
    small, large = _ops_for(8), _ops_for(256)
    assert small == large and small < 100


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_cuda_generator():
    x = _batch().cuda()
    aug = Augmenter(ALL_ON)
    a = aug(x, torch.Generator(device="cuda").manual_seed(3))
    b = aug(x, torch.Generator(device="cuda").manual_seed(3))
    assert a.is_cuda and torch.equal(a, b) and a.shape == x.shape
    c = aug(x, torch.Generator().manual_seed(3))  # a CPU generator works with CUDA data too
    assert c.is_cuda
