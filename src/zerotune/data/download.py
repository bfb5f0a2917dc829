"""Download MNIST, Fashion-MNIST and CIFAR-10, verified against published checksums.

Checksums are the MD5 values torchvision publishes (``torchvision/datasets/mnist.py`` and
``cifar.py``); MD5 is what the dataset authors' mirrors are known by, and it is used here to catch
corrupt or substituted downloads, not as a signature. Each file is streamed to a temporary name
beside its destination, hashed on the way, and renamed into place only when the digest matches,
so an interrupted or wrong download never leaves a file that looks complete.

Files go straight into the folder given, the same folder the loader is then pointed at::

    path/train-images-idx3-ubyte.gz ...        load_mnist_dir(path[, "fashion_mnist"])
    path/cifar-10-python.tar.gz                 load_cifar10_dir(path)
    path/cifar-10-batches-py/data_batch_1 ...
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..run.atomic import atomic_file, replace_dir, temporary_dir

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Resource:
    """One file to fetch: its name on the mirrors and its checksum as ``"md5:<hex>"`` or ``"sha256:<hex>"``."""

    filename: str
    checksum: str


@dataclass(frozen=True)
class DatasetDownload:
    """A dataset's mirrors (base URLs, tried in order) and files.

    ``extract`` names the folder a tar.gz resource unpacks to; ``members`` are the files that must
    then exist in it, with their checksums.
    """

    mirrors: tuple[str, ...]
    resources: tuple[Resource, ...]
    extract: str | None = None
    members: tuple[Resource, ...] = ()


DOWNLOADS: dict[str, DatasetDownload] = {
    "mnist": DatasetDownload(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        resources=(
            Resource("train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            Resource("train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432"),
            Resource("t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3"),
            Resource("t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c"),
        ),
    ),
    "fashion_mnist": DatasetDownload(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        resources=(
            Resource("train-images-idx3-ubyte.gz", "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            Resource("train-labels-idx1-ubyte.gz", "md5:25c81989df183df01b3e8a0aad5dffbe"),
            Resource("t10k-images-idx3-ubyte.gz", "md5:bef4ecab320f06d8554ea6380940ec79"),
            Resource("t10k-labels-idx1-ubyte.gz", "md5:bb300cfdad3c16e7a12a480ee83cd310"),
        ),
    ),
    "cifar10": DatasetDownload(
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        resources=(Resource("cifar-10-python.tar.gz", "md5:c58f30108f718f92721af3b95e74349a"),),
        extract="cifar-10-batches-py",
        members=(
            Resource("data_batch_1", "md5:c99cafc152244af753f735de768cd75f"),
            Resource("data_batch_2", "md5:d4bba439e000b95fd0a9bffe97cbabec"),
            Resource("data_batch_3", "md5:54ebc095f3ab1f0389bbae665268c751"),
            Resource("data_batch_4", "md5:634d18415352ddfa80567beed471001a"),
            Resource("data_batch_5", "md5:482c414d41f54cd18b22e5b47cb7c3cb"),
            Resource("test_batch", "md5:40351d587109b95175f43aff81a1287e"),
            Resource("batches.meta", "md5:5ff9c542aee3614f3951f8cda6e48888"),
        ),
    ),
}

Progress = Callable[[str, int, int | None], None]  # (filename, bytes so far, total bytes or None)


def _hasher(checksum: str):
    algo, _, digest = checksum.partition(":")
    if algo == "md5":
        # usedforsecurity=False: an integrity check, and it keeps working on FIPS-mode Pythons.
        return hashlib.md5(usedforsecurity=False), digest.lower()
    if algo == "sha256":
        return hashlib.sha256(), digest.lower()
    raise ValueError(f"checksum {checksum!r} must start with 'md5:' or 'sha256:'")


def file_digest_matches(path: str | os.PathLike, checksum: str) -> bool:
    """Whether the file exists and its digest equals ``checksum`` (``"md5:…"`` or ``"sha256:…"``)."""
    h, want = _hasher(checksum)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False
    return h.hexdigest() == want


def _fetch_one(url: str, dest: Path, checksum: str, timeout: float, progress: Progress | None) -> None:
    """Stream ``url`` to a temp file beside ``dest``; rename into place only if the digest matches.

    Raises:
        OSError / urllib errors / ValueError: for the caller to collect per mirror.
    """
    h, want = _hasher(checksum)
    with atomic_file(dest) as out, urllib.request.urlopen(url, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(dest.name, done, total)
        if total is not None and done != total:
            raise ValueError(f"connection closed after {done} of {total} bytes")
        got = h.hexdigest()
        if got != want:
            raise ValueError(f"checksum mismatch: got {got}, expected {want}")


def fetch(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: str | os.PathLike,
    checksum: str,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> Path:
    """Download ``filename`` from the first mirror that serves it with the right checksum.

    A file already at the destination with the right checksum is kept and not downloaded again.

    Args:
        filename: the name on the mirrors and at the destination.
        mirrors: base URLs (http or https), tried in order.
        dest_dir: the folder to put the file in.
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"``.
        timeout: seconds to wait for a connection or a read.
        progress: optional callback (filename, bytes so far, total or None).

    Returns:
        The path of the verified file.

    Raises:
        UserError: every mirror failed (unreachable, HTTP error, truncated, wrong checksum); the
            message lists each failure and nothing is left at the destination.
    """
    dest = Path(dest_dir) / filename
    if file_digest_matches(dest, checksum):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create download folder {dest.parent}: {e.strerror or e}") from None
    failures = []
    for base in mirrors:
        url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", filename)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            # urllib would also open file:// and ftp:// URLs; a mirror list should never need them.
            failures.append(f"{url}: only http and https mirrors are allowed")
            continue
        try:
            _fetch_one(url, dest, checksum, timeout, progress)
            return dest
        except urllib.error.HTTPError as e:
            failures.append(f"{url}: HTTP {e.code} {e.reason}")
        except urllib.error.URLError as e:
            failures.append(f"{url}: {e.reason}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            failures.append(f"{url}: {e}")
    raise UserError(f"could not download {filename}: " + "; ".join(failures or ["no mirrors given"]))


def _members_ok(folder: Path, members: Sequence[Resource]) -> bool:
    return folder.is_dir() and all(file_digest_matches(folder / m.filename, m.checksum) for m in members)


def _extract(archive: Path, parent: Path, folder: str, members: Sequence[Resource]) -> Path:
    """Unpack a tar archive into a temp folder, check it, then move ``folder`` into ``parent``."""
    if not hasattr(tarfile, "data_filter"):  # added in 3.10.12 / 3.11.4 with filter=
        raise UserError("safe archive extraction needs Python >= 3.10.12 or >= 3.11.4; please upgrade")
    tmp = temporary_dir(parent / folder)
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                # filter="data" refuses absolute paths, "..", links out of the tree, devices and
                # setuid bits: a hostile archive cannot write outside tmp.
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"cannot extract {archive}: {e}") from None
        if not _members_ok(tmp / folder, members):
            names = ", ".join(m.filename for m in members)
            raise UserError(f"{archive} did not contain {folder}/ with verified {names}")
        target = parent / folder
        replace_dir(tmp / folder, target)  # over an earlier, incomplete or corrupt extraction
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_dataset(
    name: str,
    path: str | os.PathLike,
    mirrors: Sequence[str] | None = None,
    checksums: dict[str, str] | None = None,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> Path:
    """Download (if needed) and verify a dataset; return the folder its loader reads.

    Args:
        name: "mnist", "fashion_mnist" or "cifar10".
        path: the folder to download into (created if needed), the one the loader then reads.
        mirrors: base URLs to use instead of the built-in ones (tests serve files locally).
        checksums: {filename: "md5:…" | "sha256:…"} replacing built-in checksums, for resources
            and for extracted members.
        timeout: seconds to wait for a connection or a read.
        progress: optional callback (filename, bytes so far, total or None).

    Returns:
        The folder holding the files: ``path`` for MNIST, ``path/cifar-10-batches-py`` for CIFAR-10.

    Raises:
        UserError: unknown name, every mirror failed, or a checksum did not match.
    """
    if name not in DOWNLOADS:
        raise UserError(f"no download known for dataset {name!r}; allowed: {', '.join(DOWNLOADS)}")
    src = DOWNLOADS[name]
    checksums = checksums or {}
    resources = [Resource(r.filename, checksums.get(r.filename, r.checksum)) for r in src.resources]
    members = [Resource(m.filename, checksums.get(m.filename, m.checksum)) for m in src.members]
    folder = Path(path)
    if src.extract and _members_ok(folder / src.extract, members):
        return folder / src.extract  # already unpacked and verified; the archive is not needed
    created = not folder.exists()
    try:
        paths = [
            fetch(r.filename, mirrors or src.mirrors, folder, r.checksum, timeout, progress)
            for r in resources
        ]
        if src.extract:
            return _extract(paths[0], folder, src.extract, members)
        return folder
    except BaseException:
        # Leave no empty folder behind if this call made it and nothing arrived.
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
