"""Writes that are all or nothing: a file or a folder is filled under a temporary name beside its
target, made durable, then renamed into place. A reader, or a process killed half-way, sees the
old content or the new, never part of it; a write that fails leaves no temporary behind.

Temporary names start with a dot and hold ``.tmp`` (`TEMPORARY_GLOB` finds the folders), so
readers that list a directory skip them and a later run can tell them from real files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMPORARY_GLOB = ".*.tmp-*"  # `temporary_dir`'s names: a write in progress, or one a killed process left


def error_at(e: OSError, path: str | os.PathLike) -> OSError:
    """`e` naming `path`: a failed write() or fsync() names no file, and a temporary file's name says nothing."""
    return OSError(e.errno, e.strerror or str(e), os.fspath(path))


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file open for writing under a temporary name; renamed to `path` when the block ends.

    Its content is flushed and fsynced before the rename. If the block raises, the temporary file is
    removed and `path` is left as it was. Errors pass unchanged (see `atomic_write_bytes` for named ones).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through `atomic_file`.

    Raises:
        OSError: naming `path` (not the temporary file) when the disk is full, read-only, ...
    """
    try:
        with atomic_file(path) as f:
            f.write(data)
    except OSError as e:
        raise error_at(e, path) from e


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write_bytes` of `text` as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def temporary_dir(path: str | os.PathLike) -> Path:
    """A new, empty hidden folder beside `path` (its parents made), to fill and then move into place with
    `replace_dir` or ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))


def replace_dir(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the finished folder `tmp` to `path`, replacing what is there.

    An existing `path` is first renamed aside (``.NAME.old-PID``, which train/checkpoint.py's
    `find_checkpoint` falls back to after a crash in between) and removed only once `tmp` holds its
    name, so the name always points at a whole folder: the old one or the new one.
    """
    tmp, path = Path(tmp), Path(path)
    old = None
    if os.path.lexists(path):
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        _remove(old)


def publish_dir(tmp: str | os.PathLike, path: str | os.PathLike) -> bool:
    """Move the finished folder `tmp` to `path` unless another process has just put its own there.

    For caches that several processes may build at once (the ranks of one job): the first copy stays,
    since others may be reading it already, and `tmp` is removed. Returns whether `tmp` went in.
    """
    try:
        os.rename(tmp, path)  # replaces a missing or empty folder only
    except OSError:
        if not Path(path).is_dir():
            raise
        _remove(Path(tmp))
        return False
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
