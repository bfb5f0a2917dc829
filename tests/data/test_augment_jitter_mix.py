"""Zoom, brightness, contrast, mixup and cutmix against references on tiny tensors, and in real runs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import zerotune
from zerotune.config import AugmentConfig, load_config
from zerotune.data.augment import Augmenter
from zerotune.data.mixing import Mixer, cutmix, cutmix_box
from zerotune.errors import UserError
from zerotune.tasks.mixing import mixed_loss


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_zoom_keeps_shape_and_moves_points_radially_by_the_factor():
    ys, xs = torch.meshgrid(torch.arange(21.0), torch.arange(21.0), indexing="ij")
    blob = torch.exp(-((ys - 10) ** 2 + (xs - 16) ** 2) / (2 * 1.5**2))  # 6 pixels right of the centre
    img = blob.expand(64, 1, 21, 21).contiguous()
    out = Augmenter(AugmentConfig(scale=0.3))(img, _gen())
    assert out.shape == img.shape
    xs = torch.arange(21.0)
    mass = out[:, 0].sum((1, 2))
    cx = (out[:, 0].sum(1) * xs).sum(1) / mass
    cy = (out[:, 0].sum(2) * xs).sum(1) / mass
    zoom = (cx - 10) / 6  # the point moves to 10 + 6 z along its own ray
    assert float(zoom.min()) >= 0.7 - 0.02 and float(zoom.max()) <= 1.3 + 0.02
    assert float(zoom.max() - zoom.min()) > 0.3  # factors spread over the range
    torch.testing.assert_close(cy, torch.full_like(cy, 10.0), atol=1e-4, rtol=0)


def test_brightness_multiplies_original_pixel_values():
    mean, std = [0.2, 0.5], [0.1, 2.0]
    raw = torch.rand(32, 2, 6, 6, generator=_gen(1)) + 0.5
    m, s = torch.tensor(mean).view(1, 2, 1, 1), torch.tensor(std).view(1, 2, 1, 1)
    out = Augmenter(AugmentConfig(brightness=0.4), mean, std)((raw - m) / s, _gen())
    factor = (out * s + m) / raw  # one factor per image, the same on every pixel and channel
    per_image = factor.flatten(1)
    torch.testing.assert_close(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5, rtol=0)
    assert float(per_image.min()) >= 0.6 - 1e-5 and float(per_image.max()) <= 1.4 + 1e-5
    # the mean of each image moves by the same factor
    torch.testing.assert_close((out * s + m).mean((1, 2, 3)), raw.mean((1, 2, 3)) * per_image[:, 0])


def test_contrast_keeps_each_image_mean_and_scales_its_spread():
    raw = torch.rand(32, 3, 8, 8, generator=_gen(2))
    out = Augmenter(AugmentConfig(contrast=0.5))(raw, _gen())  # not normalised: mean 0, std 1
    torch.testing.assert_close(out.mean((1, 2, 3)), raw.mean((1, 2, 3)), atol=1e-6, rtol=0)
    ratio = out.std((1, 2, 3)) / raw.std((1, 2, 3))
    assert float(ratio.min()) >= 0.5 - 1e-5 and float(ratio.max()) <= 1.5 + 1e-5 and float(ratio.std()) > 0.1


def test_new_ops_are_seeded_and_off_means_no_draws():
    x = torch.rand(8, 3, 10, 10, generator=_gen(3))
    cfg = AugmentConfig(scale=0.2, brightness=0.3, contrast=0.3, rotate_degrees=10)
    assert torch.equal(Augmenter(cfg)(x, _gen(5)), Augmenter(cfg)(x, _gen(5)))
    # An op that is off draws nothing: flip alone leaves the generator where flip alone leaves it
    g1, g2 = _gen(5), _gen(5)
    Augmenter(AugmentConfig(flip=True))(x, g1)
    Augmenter(AugmentConfig(flip=True, brightness=0.0, scale=0.0))(x, g2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_mixup_is_the_convex_blend_of_a_permuted_pair():
    x = torch.rand(16, 1, 4, 4, generator=_gen(4))
    y = torch.arange(16)
    out, y_a, y_b, lam = Mixer(AugmentConfig(mixup_alpha=0.4))(x, y, _gen())
    assert 0 < lam < 1 and torch.equal(y_a, y)
    partner = y_b  # y is arange, so y_b is the permutation itself
    assert sorted(partner.tolist()) == list(range(16))
    torch.testing.assert_close(out, lam * x + (1 - lam) * x[partner])


def test_cutmix_box_area_matches_lam():
    x = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 1, 20, 30).contiguous()  # image i is all i
    y = torch.arange(8)
    for seed in range(20):
        out, y_a, y_b, lam = Mixer(AugmentConfig(cutmix_alpha=1.0))(x, y, _gen(seed))
        pasted = out != x  # where an image now shows its partner
        moved = y_b != y_a
        area = pasted[moved].flatten(1).float().mean(1)  # share of each changed image that is pasted
        assert torch.allclose(area, torch.full_like(area, 1 - lam))
        assert torch.equal(out[pasted], x[y_b][pasted])  # the box holds the partner's pixels


def test_cutmix_box_is_clipped_and_lam_is_recomputed():
    rng = np.random.default_rng(0)
    top, bottom, left, right = cutmix_box(10, 10, 0.36, rng)  # side 0.8 before clipping
    assert 0 <= top <= bottom <= 10 and 0 <= left <= right <= 10
    x, y = torch.rand(4, 1, 10, 10), torch.arange(4)
    _, _, _, lam = cutmix(x, y, torch.tensor([1, 2, 3, 0]), 0.36, np.random.default_rng(0))
    assert lam == pytest.approx(1 - (bottom - top) * (right - left) / 100)


def test_mix_prob_and_switch():
    x, y = torch.rand(8, 1, 6, 6), torch.arange(8)
    out, y_a, y_b, lam = Mixer(AugmentConfig(mixup_alpha=1.0, mix_prob=0.0))(x, y, _gen())
    assert out is x and lam == 1.0 and torch.equal(y_b, y)
    both = Mixer(AugmentConfig(mixup_alpha=1.0, cutmix_alpha=1.0))
    kinds = set()
    for seed in range(30):
        out, _, y_b, lam = both(x, y, _gen(seed))
        blended = torch.allclose(out, lam * x + (1 - lam) * x[y_b])
        kinds.add("mixup" if blended else "cutmix")
    assert kinds == {"mixup", "cutmix"}


def test_mixed_loss_equals_the_formula_and_soft_target_cross_entropy():
    out = torch.randn(6, 4, generator=_gen(6))
    y_a, y_b, lam = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 2, 1, 0, 0, 1]), 0.3
    loss = mixed_loss(F.cross_entropy, out, y_a, y_b, lam)
    assert loss == pytest.approx(float(lam * F.cross_entropy(out, y_a) + (1 - lam) * F.cross_entropy(out, y_b)))
    soft = lam * F.one_hot(y_a, 4).float() + (1 - lam) * F.one_hot(y_b, 4).float()
    assert loss == pytest.approx(float(F.cross_entropy(out, soft)), rel=1e-6)
    assert mixed_loss(F.cross_entropy, out, y_a, y_b, 1.0) == F.cross_entropy(out, y_a)


SMALL_CNN = ["data.name=digits", "model.name=cnn", "model.channels=[8,16]", "model.dense=32", "train.epochs=6", "optim.lr=3e-3",
             "log.progress=false", "train.threads=1"]


def test_run_with_every_new_augmentation_trains_and_shows_them(runs_dir, read_events):
    cfg = load_config(None, SMALL_CNN + [
        "data.augment.scale=0.1", "data.augment.brightness=0.2", "data.augment.contrast=0.2",
        "data.augment.mixup_alpha=0.2", "data.augment.cutmix_alpha=1.0", "log.graph=false",
        "log.embeddings=false", "log.histograms_every=0", "log.layer_stats_every=0", f"log.dir={runs_dir}"])
    result = zerotune.train(cfg)
    assert result.metrics["test"]["accuracy"] > 0.85
    events = read_events(result.run_dir)
    assert {"inputs/augmented", "inputs/mixed"} <= set(events.Tags()["images"])
    # train/accuracy is measured on clean training examples in eval mode, not on the mixed batches
    assert events.Scalars("train/accuracy")[-1].value > 0.85


@pytest.mark.parametrize("settings, message", [
    (["data.name=diabetes", "model.name=mlp", "data.augment.mixup_alpha=0.2"], "classification, not regression"),
    (["data.name=iris", "model.name=mlp", "data.augment.cutmix_alpha=1"], "image data only"),
    (["data.name=iris", "model.name=mlp", "data.augment.mix_prob=2"], "augment.mix_prob"),
    (["data.name=digits", "data.augment.scale=0.9"], "augment.scale"),
    (["data.name=digits", "data.augment.brightness=-1"], "augment.brightness"),
])
def test_bad_settings_are_one_line_errors_and_write_nothing(runs_dir, settings, message):
    with pytest.raises(UserError, match=message):
        zerotune.train(load_config(None, settings + ["train.epochs=1", "log.progress=false", f"log.dir={runs_dir}"]))
    assert not any(runs_dir.iterdir()) if runs_dir.exists() else True


def test_mixup_on_a_table_trains(runs_dir):
    cfg = load_config(None, ["data.name=iris", "model.name=mlp", "model.hidden=[16]", "data.augment.mixup_alpha=0.2",
                             "train.epochs=50", "optim.lr=0.02", "log.progress=false", "log.tensorboard=false", f"log.dir={runs_dir}"])
    assert zerotune.train(cfg).metrics["test"]["accuracy"] > 0.85


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_cuda_generator():
    x, y = torch.rand(8, 3, 12, 12, device="cuda"), torch.arange(8, device="cuda")
    aug = Augmenter(AugmentConfig(scale=0.2, brightness=0.2, contrast=0.2), [0.5] * 3, [0.2] * 3)
    a = aug(x, torch.Generator(device="cuda").manual_seed(3))
    assert a.is_cuda and torch.equal(a, aug(x, torch.Generator(device="cuda").manual_seed(3)))
    mix = Mixer(AugmentConfig(mixup_alpha=0.4, cutmix_alpha=1.0))
    first = mix(x, y, torch.Generator(device="cuda").manual_seed(1))
    again = mix(x, y, torch.Generator(device="cuda").manual_seed(1))
    assert first[0].is_cuda and torch.equal(first[0], again[0]) and first[3] == again[3]
