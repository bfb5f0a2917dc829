"""Fixtures that write small, exactly known dataset files: IDX, CIFAR pickles, image folders,
and a local HTTP server to download them from."""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

IDX_CODES = {np.dtype("uint8"): 0x08, np.dtype("int8"): 0x09, np.dtype("int16"): 0x0B,
             np.dtype("int32"): 0x0C, np.dtype("float32"): 0x0D, np.dtype("float64"): 0x0E}  # fmt: skip


def idx_bytes(arr: np.ndarray) -> bytes:
    """The IDX encoding of ``arr``: 0x0000 <type> <ndim>, big-endian uint32 dims, big-endian data."""
    arr = np.asarray(arr)
    header = bytes([0, 0, IDX_CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


class _Py2Pickler(pickle._Pickler):
    """Writes ``str`` and ``bytes`` as Python 2 byte strings (BINSTRING), as CIFAR-10's Python 2
    pickles do, instead of Python 3's ``_codecs.encode`` calls."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def py2_pickle(obj) -> bytes:
    """A protocol-2 pickle shaped like one written by Python 2 with numpy 1.x."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 2 names its reconstructor numpy._core; the original files say numpy.core.
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


@pytest.fixture
def mnist_files(tmp_path):
    """A directory with the four MNIST files (train gzipped, test plain) and the arrays in them."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_x": rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8),
        "train_y": np.array([0, 1, 2, 3, 9, 5], dtype=np.uint8),
        "test_x": rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8),
        "test_y": np.array([7, 8, 9, 0], dtype=np.uint8),
    }
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", arrays["train_x"], gz=True)
    write_idx(d / "train-labels-idx1-ubyte.gz", arrays["train_y"], gz=True)
    write_idx(d / "t10k-images-idx3-ubyte", arrays["test_x"])
    write_idx(d / "t10k-labels-idx1-ubyte", arrays["test_y"])
    return d, arrays


@pytest.fixture
def cifar_files(tmp_path):
    """A cifar-10-batches-py folder with 3 images per train batch, 4 test images, and the arrays."""
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = cifar_batch(4 if name == "test_batch" else 3, seed=i)
        batches[name] = (data, labels)
        obj = {b"batch_label": f"batch {i}".encode(), b"labels": labels, b"data": data,
               b"filenames": [f"img_{j}.png".encode() for j in range(len(labels))]}  # fmt: skip
        (d / name).write_bytes(py2_pickle(obj))
    meta = {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
    (d / "batches.meta").write_bytes(py2_pickle(meta))
    return d, batches


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """(folder, base URL): files put in the folder are served from 127.0.0.1 by a threaded server."""
    # A proxy set in the environment must not intercept requests to the local server.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# Helpers as fixtures, so test modules need not import conftest (whose module name can clash
# with other conftest.py files in the tree).
@pytest.fixture
def idx_writer():
    """``write_idx(path, arr, gz=False)``."""
    return write_idx


@pytest.fixture
def py2_pickler():
    """``py2_pickle(obj) -> bytes``."""
    return py2_pickle
