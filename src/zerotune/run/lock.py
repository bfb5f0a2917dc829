"""One job at a time in a run (or sweep) directory: a lock held for the life of every command that writes to it.

The lock is ``fcntl.flock`` on a file in the directory (`RunDir.lock`, `SweepDir.lock`). The kernel
releases it when its holder dies, kill -9 included, so a stale file never blocks the next job. The
holder writes its pid into the file so that a refused job can name it. A run directory's lock file
is removed when its holder lets go: only a job that was killed leaves one, and the next job takes it over.
Where there is no ``fcntl`` (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .files import RunDir

WAIT = "wait for it to end, or stop it"


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, advice: str = WAIT) -> Iterator[None]:
    """Hold `run_dir` for this process alone while the block runs; refuse if another process holds it.

    A path that is not a directory is not locked: the caller's own checks say what is wrong with it.

    Args:
        run_dir: the run directory.
        advice: what the refusal tells the user to do.

    Raises:
        UserError: another process holds the run directory (its pid is named).
    """
    run = RunDir(run_dir)
    if not run.path.is_dir():
        yield
        return
    with hold_lock(run.lock, f"run directory {run.path}", remove=True, advice=advice):
        yield


def run_lock_if_inside(path: str | os.PathLike, run_dir: str | os.PathLike) -> contextlib.AbstractContextManager:
    """`run_lock` of `run_dir` when `path`, which a command is about to write, lies inside it; else nothing.

    Export, report and the adapters write into the run by default and anywhere with ``--out``.
    """
    inside = Path(path).resolve().is_relative_to(Path(run_dir).resolve())
    return run_lock(run_dir, f"{WAIT}, or write elsewhere with --out") if inside else contextlib.nullcontext()


@dataclass
class Hold:
    """A lock this process holds: its open file, and whether the hold is still exclusive."""

    fd: int
    exclusive: bool

    def share(self) -> None:
        """Turn the exclusive hold into a shared one, for processes this one starts to join (a sweep's workers)."""
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_SH)
        self.exclusive = False


@contextlib.contextmanager
def hold_lock(path: Path, what: str, shared: bool = False, remove: bool = False,
              advice: str = WAIT) -> Iterator[Hold | None]:
    """Hold the lock file `path`, exclusively or shared, while the block runs.

    Args:
        path: the lock file; created if missing (its directory must exist).
        what: the thing it guards, for the refusal (``"run directory runs/x"``).
        shared: a shared hold, which others may share but no exclusive one may join.
        remove: remove the file on release, when this process still holds it exclusively.
        advice: what the refusal tells the user to do.

    Yields:
        The `Hold`, or None where there is no ``fcntl``.

    Raises:
        UserError: another process holds it in a conflicting way; names its pid when known.
    """
    try:
        import fcntl
    except ImportError:  # not on POSIX: no guard
        yield None
        return
    hold = Hold(_acquire(path, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, what, advice), not shared)
    try:
        if not shared:  # the exclusive holder names itself; shared holders join one that did
            os.ftruncate(hold.fd, 0)
            os.pwrite(hold.fd, f"{os.getpid()}\n".encode(), 0)
        yield hold
    finally:
        if remove and hold.exclusive:  # while still holding it, so no one else can have taken this file
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.close(hold.fd)  # releases the lock


def _acquire(path: Path, mode: int, what: str, advice: str) -> int:
    """An open descriptor of `path` holding the lock in `mode`, without waiting."""
    import fcntl

    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes (PEP 446)
        except OSError as e:  # a read-only directory, or one of another user's
            raise UserError(f"cannot lock {what} for this job: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UserError(f"{what} is in use by another process{f' (pid {holder})' if holder else ''}; "
                            f"{advice}") from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # its holder removed the file after we opened it: lock the one that is there now


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(fd: int) -> int | None:
    """The pid written in the lock file, if that process still exists."""
    try:
        pid = int(os.pread(fd, 32, 0).decode().strip())
        os.kill(pid, 0)
    except (ValueError, UnicodeDecodeError, ProcessLookupError):
        return None
    except PermissionError:  # it exists, as another user's process
        pass
    return pid
