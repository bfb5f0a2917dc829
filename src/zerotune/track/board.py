"""`zerotune board`: the real TensorBoard server (the ``tensorboard`` package), on 127.0.0.1.

The server runs as a child process, not a thread: it then never competes with a training run
for the GIL, and stopping it is a plain terminate. It is started with ``python -m
tensorboard.main`` of the running interpreter, so it is the tensorboard installed next to
zerotune. ``zerotune board`` stops it on SIGTERM as on Ctrl-C, so the child never outlives the command.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .events import find_runs, require_tensorboard

READY_TIMEOUT = 90.0


@dataclass
class Board:
    """A running TensorBoard server.

    Attributes:
        url: where it serves, e.g. ``http://127.0.0.1:6006/``.
        logdir: the directory it reads.
        process: the server process.
        log_path: the file its stdout and stderr go to.
    """

    url: str
    logdir: Path
    process: subprocess.Popen
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (terminate, then kill if it does not exit in ``timeout`` seconds)."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait(self) -> int:
        """Block until the server exits (or Ctrl-C, which stops it); returns its exit code."""
        try:
            return self.process.wait()
        except KeyboardInterrupt:
            self.stop()
            return 0

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server printed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(host: str, port: int) -> None:
    """Raise UserError when ``port`` cannot be bound on ``host`` (in use or not allowed)."""
    if not 0 < port < 65536:
        raise UserError(f"port {port} is out of range; use 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot serve on {host}:{port} ({e.strerror or e}); is another board running? "
                            f"choose another port with --port") from None


def http_get(url: str, timeout: float = 10.0) -> bytes:
    """GET a URL directly (proxy settings in the environment would intercept 127.0.0.1)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return r.read()


def start_board(logdir: str | Path = "runs", port: int = 6006, host: str = "127.0.0.1", *,
                require_runs: bool = False, reload_interval: float = 2.0, timeout: float = READY_TIMEOUT) -> Board:
    """Start TensorBoard on ``logdir`` and wait until it answers.

    Args:
        logdir: the directory of runs (created when missing and ``require_runs`` is False, as
            for a live board started before the first run writes).
        port: the port; 0 picks a free one.
        host: the address to bind; 127.0.0.1 unless the board must be reachable from elsewhere.
        require_runs: raise UserError when ``logdir`` holds no event files yet.
        reload_interval: seconds between the server's scans for new data.
        timeout: seconds to wait for the server to answer.

    Returns:
        A Board with ``.url`` and ``.stop()``; it is also stopped when this process exits.

    Raises:
        UserError: tensorboard missing, no runs (when required), port in use, or the server
            failing to start (its last output is included).
    """
    require_tensorboard()
    logdir = Path(logdir)
    if require_runs:
        if not find_runs(logdir):
            raise UserError(f"no runs in {logdir}: no TensorBoard event files found under it")
    else:
        logdir.mkdir(parents=True, exist_ok=True)
    port = free_port(host) if port == 0 else port
    check_port(host, port)
    log_path = Path(tempfile.mkstemp(prefix="zerotune-board-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir.resolve()), "--host", host,
           "--port", str(port), "--reload_interval", str(reload_interval),
           "--samples_per_plugin", "images=100"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url_host = f"[{host}]" if ":" in host else host
    board = Board(f"http://{url_host}:{port}/", logdir, process, log_path)
    atexit.register(board.stop)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise UserError(f"TensorBoard exited with code {process.returncode}:\n{board.log_tail()}")
        try:
            http_get(board.url + "data/environment", timeout=2)
            return board
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            board.stop()
            raise UserError(f"TensorBoard did not answer within {timeout:.0f} s:\n{board.log_tail()}")
        time.sleep(0.25)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does.

    SIGTERM's default action ends the process at once, with no cleanup: the TensorBoard child would
    be orphaned and keep the port. As an interrupt, it runs the same stop as Ctrl-C.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return

    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not cut the stop short
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def board_command(logdir: str | Path = "runs", port: int = 6006, host: str = "127.0.0.1") -> int:
    """Serve the runs in ``logdir`` until Ctrl-C or SIGTERM, then stop the server."""
    with sigterm_as_interrupt():
        board = start_board(logdir, port, host, require_runs=True)
        try:
            print(f"TensorBoard on {board.logdir} at {board.url} (Ctrl-C to stop)", flush=True)
            code = board.wait()
        except KeyboardInterrupt:  # arrived outside board.wait's own handling
            code = 0
        finally:
            board.stop()
    return 0 if code in (0, -15, None) else code
