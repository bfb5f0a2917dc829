import gzip
import hashlib
import io
import socket
import tarfile

import numpy as np
import pytest

from zerotune.data.cifar import load_cifar10_dir
from zerotune.data.download import DOWNLOADS, download_dataset, fetch, file_digest_matches
from zerotune.data.idx import load_mnist_dir
from zerotune.errors import UserError

MNIST_FILES = [r.filename for r in DOWNLOADS["mnist"].resources]


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def served_mnist(mnist_files, http_root):
    """The fixture's MNIST files, gzipped, on the local server; returns (url, checksums)."""
    src, arrays = mnist_files
    served, url = http_root
    checksums = {}
    for name in MNIST_FILES:
        plain = src / name.removesuffix(".gz")
        data = plain.read_bytes() if plain.exists() else gzip.decompress((src / name).read_bytes())
        gz = gzip.compress(data, mtime=0)
        (served / name).write_bytes(gz)
        checksums[name] = _sha256(gz) if "images" in name else _md5(gz)  # both kinds of digest
    return url, checksums, arrays


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_builtin_sources_are_complete():
    assert set(DOWNLOADS) == {"mnist", "fashion_mnist", "cifar10"}
    assert DOWNLOADS["mnist"].resources[0].checksum == "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert DOWNLOADS["cifar10"].resources[0].checksum == "md5:c58f30108f718f92721af3b95e74349a"
    assert all(m.startswith(("http://", "https://")) for s in DOWNLOADS.values() for m in s.mirrors)


def test_download_mnist_then_load(served_mnist, tmp_path):
    url, checksums, arrays = served_mnist
    calls = []
    out = download_dataset(
        "mnist", tmp_path / "data" / "mnist", mirrors=[url], checksums=checksums,
        progress=lambda name, done, total: calls.append((name, done, total)),
    )  # fmt: skip
    assert out == tmp_path / "data" / "mnist"
    assert _leftovers(out) == sorted(MNIST_FILES)  # no temp files
    for name in MNIST_FILES:
        assert file_digest_matches(out / name, checksums[name])
    ds = load_mnist_dir(out)
    np.testing.assert_array_equal(np.round(ds.x[:, 0] * 255).astype(np.uint8), arrays["train_x"])
    assert ds.y.tolist() == arrays["train_y"].tolist()
    assert calls and calls[-1][1] == calls[-1][2]  # progress reached the Content-Length


def test_existing_verified_files_are_not_downloaded_again(served_mnist, tmp_path):
    url, checksums, _ = served_mnist
    download_dataset("mnist", tmp_path, mirrors=[url], checksums=checksums)
    # A dead mirror: succeeding now proves nothing was fetched.
    assert download_dataset("mnist", tmp_path, mirrors=["http://127.0.0.1:9/"], checksums=checksums)


def test_checksum_mismatch_leaves_nothing(served_mnist, tmp_path):
    url, checksums, _ = served_mnist
    bad = dict(checksums, **{MNIST_FILES[0]: "md5:" + "0" * 32})
    with pytest.raises(UserError, match=f"could not download {MNIST_FILES[0]}: .*checksum mismatch"):
        download_dataset("mnist", tmp_path / "data", mirrors=[url], checksums=bad)
    assert _leftovers(tmp_path / "data") == []
    # A single file into an existing folder: no file, no temp file.
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch(MNIST_FILES[1], [url], dest, "sha256:" + "f" * 64)
    assert _leftovers(dest) == []


def test_mirror_fallback(served_mnist, tmp_path):
    url, checksums, _ = served_mnist
    name = MNIST_FILES[3]
    path = fetch(name, [url + "missing/", url], tmp_path, checksums[name])
    assert file_digest_matches(path, checksums[name])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server(tmp_path):
    dead = f"http://127.0.0.1:{_free_port()}/"
    with pytest.raises(UserError, match="could not download train-images-idx3-ubyte.gz: http://127.0.0.1") as e:
        download_dataset("mnist", tmp_path / "d", mirrors=[dead], timeout=5)
    assert "\n" not in str(e.value)
    assert _leftovers(tmp_path / "d") == []


def test_http_404_and_bad_scheme(http_root, tmp_path):
    _, url = http_root
    with pytest.raises(UserError, match="HTTP 404"):
        fetch("nothing.gz", [url], tmp_path, "md5:" + "0" * 32)
    with pytest.raises(UserError, match="only http and https"):
        fetch("passwd", ["file:///etc/"], tmp_path, "md5:" + "0" * 32)
    with pytest.raises(UserError, match="allowed: mnist, fashion_mnist, cifar10"):
        download_dataset("imagenet", tmp_path)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(UserError, match="cannot create download folder .*a_file"):
        download_dataset("mnist", tmp_path / "a_file", mirrors=[url])


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_download_cifar_extracts_and_verifies(cifar_files, http_root, tmp_path):
    src, batches = cifar_files
    served, url = http_root
    members = {p.name: p.read_bytes() for p in src.iterdir()}
    archive = _tar_gz({f"cifar-10-batches-py/{n}": d for n, d in members.items()})
    (served / "cifar-10-python.tar.gz").write_bytes(archive)
    checksums = {n: _md5(d) for n, d in members.items()} | {"cifar-10-python.tar.gz": _md5(archive)}
    out = download_dataset("cifar10", tmp_path / "data", mirrors=[url], checksums=checksums)
    assert out == tmp_path / "data" / "cifar-10-batches-py"
    ds = load_cifar10_dir(tmp_path / "data")  # the loader finds cifar-10-batches-py inside
    assert ds.test[1].tolist() == batches["test_batch"][1]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # temp folder removed
    # Unpacked and verified: no second download even with the archive gone and no server.
    (out.parent / "cifar-10-python.tar.gz").unlink()
    assert download_dataset("cifar10", tmp_path / "data", mirrors=["http://127.0.0.1:9/"], checksums=checksums) == out


def test_hostile_archive_refused(http_root, tmp_path):
    served, url = http_root
    archive = _tar_gz({"../escape.txt": b"gotcha"})
    (served / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(UserError, match="cannot extract"):
        download_dataset("cifar10", tmp_path / "data", mirrors=[url],
                         checksums={"cifar-10-python.tar.gz": _md5(archive)})  # fmt: skip
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "data" / "escape.txt").exists()
