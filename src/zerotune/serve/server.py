"""Running the app with uvicorn: in the foreground for the CLI, or in a thread for tests and benchmarks.

Shutdown is graceful: on SIGINT or SIGTERM the server stops accepting connections, answers every
request a client has sent (also one still on its way on a keep-alive connection, see `graceful`),
lets requests in flight finish (up to ``shutdown_timeout`` seconds), and then the app's lifespan
drains the micro-batcher, so no request goes unanswered. The process then exits with status 0.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from ..compute.threads import torch_threads
from ..errors import UserError
from .app import ServeOptions, create_app
from .model import load_served_model


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.

    Raises:
        UserError: when the address cannot be bound (in use, not local, no permission).
    """
    if not 0 <= port <= 65535:
        raise UserError(f"port must be between 0 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is IPPROTO_TCP,
    # and without it every response waits ~40 ms for a delayed ACK between its headers and body.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as e:  # in use, not an address of this machine, no permission
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app, log_level: str, shutdown_timeout: float):
    from .graceful import GracefulServer

    return GracefulServer(app, log_level=log_level, access_log=False, lifespan="on",
                          timeout_graceful_shutdown=int(shutdown_timeout), server_header=False)


def serve(target: str | Path, *, backend: str = "auto", host: str = "127.0.0.1", port: int = 8000,
          checkpoint: str = "best", threads: int | None = None, options: ServeOptions | None = None,
          shutdown_timeout: float = 10.0, log_level: str = "info") -> None:
    """Serve a run or an exported model over HTTP until interrupted.

    Args:
        target: a run directory or an exported .onnx / .pt file.
        backend: "auto", "torch" or "onnx".
        host: address to bind; 127.0.0.1 unless you mean to expose the model.
        port: TCP port; 0 picks a free one (printed on startup).
        checkpoint: "best" or "last" (runs only).
        threads: CPU threads for the backend while serving (default: its own choice).
        options: token, limits and batching.
        shutdown_timeout: seconds in-flight requests get to finish on shutdown.
        log_level: uvicorn's log level.
    """
    use_threads = torch_threads(threads)  # validated before the port is bound
    options = options or ServeOptions()
    with use_threads:  # for the life of the server; the count is restored when it stops
        sock = bind(host, port)  # first, so a busy port fails before the model is loaded
        try:
            served = load_served_model(target, backend, checkpoint, threads)
        except BaseException:
            sock.close()
            raise
        app = create_app(served, options)
        actual = sock.getsockname()[1]
        if host not in ("127.0.0.1", "localhost", "::1") and options.token is None:
            print(f"warning: serving on {host} without --token: anyone who can reach this port can use the model",
                  file=sys.stderr)
        print(f"serving {served.name} ({served.backend}, version {served.version}) on http://{_url_host(host)}:{actual}"
              f"  page: /  docs: /docs  batching: {'on' if options.batching else 'off'}", flush=True)
        # Everything loaded so far (torch, the model) lives as long as the process: move it out of the
        # garbage collector's sight, so full collections stop scanning it and stalling every request.
        gc.collect()
        gc.freeze()
        server = _uvicorn_server(app, log_level, shutdown_timeout)
        with _exit_normally_on_sigterm(server):
            server.run(sockets=[sock])


@contextlib.contextmanager
def _exit_normally_on_sigterm(server):
    """After a graceful shutdown uvicorn re-raises the SIGTERM it caught, so the default handler would
    end the process with status -15 although every request was answered. The work is done by then:
    the re-raised signal is ignored and the command returns normally (status 0)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        if not server.started:  # before uvicorn listens for signals itself: there is nothing to finish
            raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def running_server(app, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0):
    """Run ``app`` with uvicorn in a background thread; yields its base URL, stops it on exit.

    For tests, examples and benchmarks that need a real server on loopback.
    """
    sock = bind(host, port)
    server = _uvicorn_server(app, "warning", 5)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
