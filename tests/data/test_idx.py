import gzip

import numpy as np
import pytest

from zerotune.data.idx import FASHION_MNIST_CLASSES, load_mnist_dir, read_idx
from zerotune.errors import UserError


def test_load_mnist_dir_values(mnist_files):
    d, a = mnist_files
    ds = load_mnist_dir(d)
    assert ds.x.shape == (6, 1, 28, 28) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 2, 3, 9, 5]
    np.testing.assert_allclose(ds.x[:, 0], a["train_x"] / 255.0, rtol=0, atol=1e-7)
    assert ds.x.min() >= 0 and ds.x.max() <= 1
    assert ds.x[2, 0, 5, 7] == np.float32(a["train_x"][2, 5, 7] / 255.0)
    x_test, y_test = ds.test
    assert x_test.shape == (4, 1, 28, 28) and y_test.tolist() == [7, 8, 9, 0]
    np.testing.assert_allclose(x_test[:, 0], a["test_x"] / 255.0, rtol=0, atol=1e-7)
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.task == "classification" and ds.is_image


def test_fashion_names_and_raw_subfolder(mnist_files, tmp_path):
    d, _ = mnist_files
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.parent.mkdir()
    d.rename(raw)
    ds = load_mnist_dir(raw.parent, variant="fashion_mnist")
    assert ds.class_names == FASHION_MNIST_CLASSES and ds.class_names[9] == "Ankle boot"


def test_gzip_detected_by_magic_not_name(mnist_files):
    d, a = mnist_files
    # Gzipped bytes under the plain name must still be read.
    plain = d / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.compress(plain.read_bytes()))
    assert np.array_equal(read_idx(plain), a["test_x"])


def test_read_idx_other_types(tmp_path, idx_writer):
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    p = idx_writer(tmp_path / "a.idx", arr)
    out = read_idx(p)
    assert out.dtype == np.int32 and np.array_equal(out, arr)  # big-endian decoded correctly
    f = idx_writer(tmp_path / "f.idx", np.array([1.5, -2.25], dtype=np.float64), gz=True)
    assert read_idx(f).tolist() == [1.5, -2.25]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:-3], "truncated"),
        (lambda b: b + b"\x00", "longer than its header"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file with magic 0x00000803"),
        (lambda b: b[:2] + b"\x08\x01" + b[4:], "1-dimensional"),
        (lambda b: b[:2] + b"\x0c" + b[3:], "expected uint8"),
        (lambda b: b[:2] + b"\x42" + b[3:], "unknown IDX element type"),
        (lambda b: b[:6], "truncated inside its IDX header"),
    ],
)
def test_corrupt_image_file(mnist_files, mutate, message):
    d, _ = mnist_files
    p = d / "t10k-images-idx3-ubyte"
    p.write_bytes(mutate(p.read_bytes()))
    with pytest.raises(UserError, match=message) as e:
        load_mnist_dir(d)
    assert "t10k-images-idx3-ubyte" in str(e.value) and "\n" not in str(e.value)


def test_truncated_gzip(mnist_files):
    d, _ = mnist_files
    p = d / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz is a corrupt or truncated gzip"):
        load_mnist_dir(d)


def test_missing_file(mnist_files):
    d, _ = mnist_files
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="no t10k-labels-idx1-ubyte"):
        load_mnist_dir(d)


def test_count_mismatch_and_bad_label(mnist_files, idx_writer):
    d, _ = mnist_files
    idx_writer(d / "t10k-labels-idx1-ubyte", np.array([1, 2, 3], dtype=np.uint8))
    with pytest.raises(UserError, match="has 4 images but .* has 3 labels"):
        load_mnist_dir(d)
    idx_writer(d / "t10k-labels-idx1-ubyte", np.array([1, 2, 3, 10], dtype=np.uint8))
    with pytest.raises(UserError, match="label 10; expected labels 0..9"):
        load_mnist_dir(d)


def test_bad_variant_and_missing_dir(tmp_path):
    with pytest.raises(UserError, match="allowed: mnist, fashion_mnist"):
        load_mnist_dir(tmp_path, variant="kmnist")
    with pytest.raises(UserError, match="is not a directory"):
        load_mnist_dir(tmp_path / "nope")
