"""Scalar writing off the hot path.

The training thread only appends (tag, value, step) to a list; tensors are not read there, so no
device sync happens per step. A background thread turns them into floats and hands them to
tensorboardX once a second, while torch kernels (which release the GIL) keep the main thread busy.
"""

from __future__ import annotations

import threading

import torch


class ScalarQueue:
    def __init__(self, writer, interval: float = 1.0):
        self._writer = writer
        self._pending: list[tuple[str, object, int]] = []
        self._lock = threading.Lock()  # serialises drains (thread vs. explicit flush)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True, name="zerotune-scalars")
        self._thread.start()

    def add(self, tag: str, value, step: int) -> None:
        self._pending.append((tag, value, step))  # list.append is atomic under the GIL

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.drain()

    def drain(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            for tag, value, step in batch:
                v = float(value.detach().float()) if torch.is_tensor(value) else float(value)
                self._writer.add_scalar(tag, v, step)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.drain()
