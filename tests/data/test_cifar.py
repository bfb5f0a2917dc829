import io
import os
import pickle

import numpy as np
import pytest

from zerotune.data.cifar import RestrictedUnpickler, load_cifar10_dir, read_batch, restricted_load
from zerotune.errors import UserError

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_py2_style_file_uses_only_numpy_globals(cifar_files):
    d, _ = cifar_files
    # The fixture must look like the real thing: numpy.core globals, no _codecs.
    raw = (d / "data_batch_1").read_bytes()
    assert raw[:2] == b"\x80\x02" and b"numpy.core.multiarray\n_reconstruct" in raw and b"_codecs" not in raw


def test_load_values(cifar_files):
    d, batches = cifar_files
    ds = load_cifar10_dir(d.parent)  # the parent of cifar-10-batches-py works too
    assert ds.x.shape == (15, 3, 32, 32) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64
    expected_y = sum((batches[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert ds.y.tolist() == expected_y
    data1 = batches["data_batch_1"][0]
    # Row layout: 1024 red, 1024 green, 1024 blue; each 32x32 row by row.
    assert ds.x[0, 0, 0, 0] == np.float32(data1[0, 0] / 255)
    assert ds.x[0, 1, 0, 0] == np.float32(data1[0, 1024] / 255)
    assert ds.x[1, 2, 3, 5] == np.float32(data1[1, 2048 + 3 * 32 + 5] / 255)
    last = batches["data_batch_5"][0]
    np.testing.assert_allclose(ds.x[12:].reshape(3, -1), last / 255.0, atol=1e-7, rtol=0)
    x_test, y_test = ds.test
    assert x_test.shape == (4, 3, 32, 32) and y_test.tolist() == batches["test_batch"][1]
    assert ds.class_names == NAMES and ds.task == "classification"


def test_python3_protocol2_pickle_also_loads(tmp_path):
    # Python 3 writes bytes under protocol 2 as _codecs.encode(str, "latin1"): allowed narrowly.
    data = np.arange(3072 * 2, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    p = tmp_path / "batch"
    p.write_bytes(pickle.dumps({b"data": data, b"labels": [3, 4], b"batch_label": b"x"}, protocol=2))
    assert b"_codecs" in p.read_bytes()
    x, y = read_batch(p)
    assert y.tolist() == [3, 4] and x[1, 0, 0, 0] == np.float32(data[1, 0] / 255)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_global_refused(tmp_path, py2_pickler):
    p = tmp_path / "data_batch_1"
    p.write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    with pytest.raises(UserError, match=r"global (posix|os|nt)\.system is not allowed") as e:
        restricted_load(p)
    assert "data_batch_1" in str(e.value)
    # The same for builtins.eval, and for a Python-2-style pickle.
    p.write_bytes(b"\x80\x02c__builtin__\neval\nq\x00X\x04\x00\x00\x001+1q\x01\x85q\x02Rq\x03.")
    with pytest.raises(UserError, match=r"global __builtin__\.eval is not allowed"):
        restricted_load(p)


def test_codecs_stand_in_refuses_other_codecs():
    evil = pickle.dumps(b"x", protocol=2).replace(b"latin1", b"rot_13")
    with pytest.raises(pickle.UnpicklingError, match="refused _codecs.encode"):
        RestrictedUnpickler(io.BytesIO(evil)).load()


def test_bad_contents(cifar_files, py2_pickler):
    d, _ = cifar_files
    (d / "data_batch_3").write_bytes(py2_pickler({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(UserError, match=r"data_batch_3: 'data' is uint8 \(2, 100\); expected"):
        load_cifar10_dir(d)
    (d / "data_batch_3").write_bytes(py2_pickler({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}))
    with pytest.raises(UserError, match="data_batch_3 has 2 images but 'labels' has shape"):
        load_cifar10_dir(d)
    (d / "data_batch_3").write_bytes(py2_pickler({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}))
    with pytest.raises(UserError, match="expected 0..9"):
        load_cifar10_dir(d)
    (d / "data_batch_3").write_bytes(py2_pickler([1, 2, 3]))
    with pytest.raises(UserError, match="holds a list; expected a dict"):
        load_cifar10_dir(d)


def test_truncated_and_missing(cifar_files):
    d, _ = cifar_files
    p = d / "test_batch"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(UserError, match="test_batch"):
        load_cifar10_dir(d)
    (d / "data_batch_4").unlink()
    with pytest.raises(UserError, match="lacks data_batch_4"):
        load_cifar10_dir(d)
