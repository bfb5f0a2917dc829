import numpy as np
import pytest
import torch

from zerotune.config import DataConfig
from zerotune.data import build_data, normalize_inputs
from zerotune.data.batches import epoch_permutation, iter_batches
from zerotune.data.builtin import load_digits
from zerotune.errors import UserError


@pytest.mark.parametrize("name, n, shape, classes", [
    ("digits", 1797, [1, 8, 8], 10), ("iris", 150, [4], 3), ("wine", 178, [13], 3),
    ("breast_cancer", 569, [30], 2), ("diabetes", 442, [10], 0),
    ("synthetic_classification", 2000, [20], 3), ("synthetic_regression", 2000, [20], 0),
])
def test_builtin_sets_split_into_disjoint_parts(name, n, shape, classes):
    b = build_data(DataConfig(name=name))
    assert sum(b.meta.sizes.values()) == n
    assert b.meta.input_shape == shape and b.meta.num_classes == classes
    assert abs(b.meta.sizes["test"] - 0.2 * n) <= 1 and abs(b.meta.sizes["val"] - 0.1 * n) <= 1


def test_split_indices_are_disjoint_and_complete():
    from zerotune.data.preprocess import split_indices

    y = np.repeat(np.arange(4), 50)
    train, val, test = split_indices(y, (0.1, 0.2), seed=0, stratify=True)
    assert len(set(train) | set(val) | set(test)) == 200 and len(train) + len(val) + len(test) == 200
    assert np.bincount(y[test]).tolist() == [10] * 4


def test_normalisation_uses_training_statistics_only():
    b = build_data(DataConfig(name="wine"))
    assert torch.allclose(b.train.x.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(b.train.x.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    assert not torch.allclose(b.test.x.mean(0), torch.zeros(13), atol=1e-3)  # test is not re-centred
    raw = build_data(DataConfig(name="wine", normalize="none"))
    assert torch.allclose(normalize_inputs(raw.test.x, b.meta), b.test.x, atol=1e-5)


def test_image_statistics_are_per_channel():
    b = build_data(DataConfig(name="digits"))
    assert len(b.meta.x_mean) == 1 and abs(float(b.train.x.mean())) < 1e-5


def test_splits_are_seeded_and_stratified():
    a, b = build_data(DataConfig(name="iris")), build_data(DataConfig(name="iris"))
    assert torch.equal(a.test.x, b.test.x)
    c = build_data(DataConfig(name="iris", split_seed=1))
    assert not torch.equal(a.test.x, c.test.x)
    assert torch.bincount(a.test.y).tolist() == [10, 10, 10]


def test_regression_target_is_standardised_for_training():
    b = build_data(DataConfig(name="diabetes"))
    assert abs(float(b.train.y.mean())) < 1e-5 and abs(float(b.train.y.std(unbiased=False)) - 1) < 1e-4
    assert 140 < b.meta.y_mean < 165


def test_class_selection_and_few_shot_training_set():
    b = build_data(DataConfig(name="digits", classes=[5, 6, 7, 8, 9], train_per_class=20))
    assert b.meta.class_names == ["5", "6", "7", "8", "9"]
    assert torch.bincount(b.train.y).tolist() == [20] * 5
    assert set(b.test.y.tolist()) == set(range(5))
    with pytest.raises(UserError, match="distinct class indices in 0..9"):
        build_data(DataConfig(name="digits", classes=[3, 12]))


def test_digits_pixels_are_scaled():
    raw = load_digits()
    assert raw.x.shape == (1797, 1, 8, 8) and raw.x.max() == 1.0 and raw.x.min() == 0.0


def test_batches_cover_the_split_once_per_epoch():
    b = build_data(DataConfig(name="iris"))
    perm = epoch_permutation(len(b.train), seed=0, epoch=3, device="cpu")
    assert torch.equal(perm, epoch_permutation(len(b.train), 0, 3, "cpu"))
    assert not torch.equal(perm, epoch_permutation(len(b.train), 0, 4, "cpu"))
    ys = torch.cat([y for _, y in iter_batches(b.train, 16, perm)])
    assert torch.equal(ys.sort().values, b.train.y.sort().values)
    xs = [x for x, _ in iter_batches(b.train, 16, perm, start=2)]
    assert len(xs) == int(np.ceil(len(b.train) / 16)) - 2


def test_unknown_source_and_missing_path():
    with pytest.raises(UserError, match="unknown data set 'imagenet'; available: digits"):
        build_data(DataConfig(name="imagenet"))
    with pytest.raises(UserError, match="set data.path"):
        build_data(DataConfig(name="mnist"))
