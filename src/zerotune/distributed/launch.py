"""``zerotune train --nproc N``: N local workers through torch's elastic agent, as ``torchrun --nproc-per-node N``.

The workers run ``python -m zerotune train ...`` with torchrun's variables set (RANK, WORLD_SIZE, ...),
so a job started here and one started by torchrun are the same job. A worker that stops on bad
input leaves its one-line reason in the agent's error file; a worker that dies takes the job
down, and either way the launcher says in one line which rank and why.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import NoReturn

from ..errors import UserError

# Set in workers that `launch` started, to the launcher's pid: they leave the reporting to it, and die with it
# (distributed/parent.py).
LAUNCHED_VAR = "ZEROTUNE_NPROC"


class WorkerFailed(Exception):
    """A worker died or failed for a reason other than bad input; `str()` is the one line to show."""


def in_worker() -> bool:
    """Whether torchrun (or ``--nproc``) started this process: its variables are in the environment."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def check_nproc(nproc: int) -> None:
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: the number of worker processes must be at least 1")


def launch(nproc: int, worker_args: list[str], max_restarts: int = 0, debug: bool = False,
           program: tuple[str, ...] = ("-m", "zerotune")) -> None:
    """Run ``python -m zerotune WORKER_ARGS`` in `nproc` processes under torch's elastic agent; return when all are done.

    Args:
        nproc: worker processes on this machine.
        worker_args: the zerotune command line of each worker, e.g. ``["train", "recipe.toml"]``.
        max_restarts: times the agent restarts every worker after one fails.
        debug: keep the agent's own log messages.
        program: what Python runs in each worker, before `worker_args` (a script path in tests).

    Raises:
        UserError: a worker stopped on bad input (its own one-line reason).
        WorkerFailed: a worker died (killed, out of memory) or failed otherwise.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_nproc(nproc)
    if not debug:  # the agent logs each step of its work and a traceback-like summary of a failure
        for name in ["torch.distributed.elastic", *logging.root.manager.loggerDict]:
            if name.startswith("torch.distributed.elastic"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: N processes must not each take every core
    os.environ[LAUNCHED_VAR] = str(os.getpid())  # the agent runs here, in this process: the workers' parent
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=max_restarts,
                          monitor_interval=0.1)
    try:
        elastic_launch(config, sys.executable)(*program, *worker_args)
    except ChildFailedError as e:
        rank, failure = root_failure(e.failures)
        raise failure_error(rank, failure.exitcode, failure.pid, failure.message,
                            failure.signal_name() if failure.exitcode < 0 else None) from None
    except SignalException:  # Ctrl-C or a TERM to the launcher: the agent has stopped the workers
        raise KeyboardInterrupt from None
    finally:
        os.environ.pop(LAUNCHED_VAR, None)


def root_failure(failures: dict) -> tuple:
    """The (rank, failure) that brought the job down, rather than one the agent or a lost peer caused.

    A rank killed by a signal other than the agent's SIGTERM comes first, then one that stopped on
    bad input (exit code 2), then the earliest; the other ranks only lost their connection to it.
    """
    def cause(item):
        rank, f = item
        killed = f.exitcode < 0 and f.signal_name() != "SIGTERM"
        return (not killed, f.exitcode != 2, f.exitcode == -15, f.timestamp, rank)

    return min(failures.items(), key=cause)


def failure_error(rank: int, exitcode: int, pid: int, message, signal: str | None) -> Exception:
    """The one-line error a failed worker becomes: its own UserError, or what happened to it."""
    text = message if isinstance(message, str) else (message or {}).get("message", "")
    if exitcode == 2 and text:
        return UserError(text)
    if signal is not None:
        return WorkerFailed(f"rank {rank} (pid {pid}) was killed by {signal}; the other ranks were stopped")
    return WorkerFailed(f"rank {rank} (pid {pid}) failed with exit code {exitcode}; the other ranks were stopped"
                        + (f": {text}" if text and not text.startswith("To enable traceback") else ""))


def end_process(code: int | str | None) -> NoReturn:
    """Exit with `code` as `sys.exit` would (None is 0; a text is printed, then 1); a torchrun worker skips
    the interpreter's finalization, as multiprocessing's children do.

    gloo's worker threads release a finished collective's tensors on their own; one still doing so
    while the interpreter finalizes needs the GIL, cannot get it and aborts the process (SIGABRT,
    "terminate called without an active exception"), failing a job that has finished. A worker has
    nothing left to finalize once its output is flushed.
    """
    if not in_worker():
        sys.exit(code)
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def report_worker_error(message: str) -> bool:
    """In a worker, leave `message` in the agent's error file; return whether this worker should also print it.

    Under ``--nproc`` the launcher prints one line for the job; under torchrun rank 0 prints it.
    """
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"message": message, "timestamp": int(time.time())}, f)
    return not under_launcher() and os.environ.get("RANK", "0") == "0"


def under_launcher() -> bool:
    """Whether `launch` (``--nproc``) started this worker, and so reports its failure."""
    return LAUNCHED_VAR in os.environ
