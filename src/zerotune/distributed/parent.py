"""A worker of ``--nproc`` ends with the launcher that started it, even when the launcher is killed with -9.

torch's elastic agent runs inside the launcher and starts each worker in a session of its own, so a
killed launcher (and its agent) leaves the workers training to the end, writing into the run while a
resume of it may already have begun. On Linux each worker asks the kernel for SIGKILL when its
parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread watches the parent's pid.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from .launch import LAUNCHED_VAR

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5  # where there is no prctl: how often the watching thread looks


def launcher_pid() -> int | None:
    """The pid of the ``--nproc`` launcher that started this process (None: no launcher, or torchrun's)."""
    value = os.environ.get(LAUNCHED_VAR, "")
    return int(value) if value.isdigit() else None


def end_with_launcher() -> None:
    """In a worker that ``--nproc`` started: die when the launcher does; elsewhere do nothing.

    Called first thing in ``python -m zerotune``, before torch is imported, so that a launcher killed
    while its workers start up takes them too.
    """
    parent = launcher_pid()
    if parent is None:
        return
    if not sys.platform.startswith("linux") or not _pdeathsig(signal.SIGKILL):
        threading.Thread(target=_watch, args=(parent,), name="zerotune-launcher-watch", daemon=True).start()
    # The launcher may have died before the kernel was asked: then this process already has another parent.
    if os.getppid() != parent:
        _die()


def _pdeathsig(sig: int) -> bool:
    """Ask Linux to send `sig` to this process when its parent thread exits; whether that worked."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    _die()


def _die() -> None:
    """End now, as the launcher did: nothing of the job is left to finish (SIGKILL; Windows has none)."""
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
