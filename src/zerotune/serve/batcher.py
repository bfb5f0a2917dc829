"""Server-side micro-batching: requests that arrive together share one model call.

Each request's examples go into a queue. One worker takes whatever is queued (up to ``max_batch``
examples, waiting at most ``max_wait_ms`` for more), runs the model once on the whole batch in a
worker thread, and hands each request its rows. While the model runs, new requests queue up, so
under load batches grow by themselves; a lone request waits at most ``max_wait_ms``.

With ``max_batch=1`` every request gets its own model call: the same code path without batching.
When a shared call fails, each of its requests is run again alone, so a request whose inputs break
the model (e.g. values so large that activations overflow) fails by itself.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

_STOP = object()


class MicroBatcher:
    """Coalesces concurrent ``submit`` calls into batched calls of ``fn``.

    Args:
        fn: maps a (B, ...) array to a tuple of (B, ...) arrays; runs in a worker thread.
        max_batch: most examples per call of ``fn`` (a single larger request still runs, alone).
        max_wait_ms: how long to wait for more requests once one has arrived.
        concat: joins the requests' batches into one (default ``np.concatenate``; token ids of
            different lengths are padded to the longest instead).
    """

    def __init__(self, fn: Callable[[np.ndarray], tuple[np.ndarray, ...]], max_batch: int = 64,
                 max_wait_ms: float = 1.0, concat: Callable[[list[np.ndarray]], np.ndarray] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.fn = fn
        self.concat = concat or np.concatenate
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.batches = 0  # model calls made, for metrics and tests
        self.examples = 0
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        # One thread: model calls never overlap, so batching, not thread contention, sets throughput.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="zerotune-model")
        self._held = None  # an item taken from the queue that did not fit the last batch

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def submit(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Queue ``x`` (a batch of examples) and wait for its rows of the outputs."""
        if self._task is None or self._task.done():
            raise RuntimeError("the batcher is not running")
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put((x, fut))
        return await fut

    async def stop(self) -> None:
        """Finish every queued request, then stop the worker and its thread."""
        if self._task is not None:
            await self._queue.put(_STOP)
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    def _fill(self, items: list, rows: int) -> tuple[int, bool]:
        """Move queued requests into ``items`` while they fit; returns (rows, stop seen)."""
        while rows < self.max_batch and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is _STOP:
                return rows, True
            if rows + len(item[0]) > self.max_batch:
                self._held = item
                break
            items.append(item)
            rows += len(item[0])
        return rows, False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first, self._held = self._held or await self._queue.get(), None
            if first is _STOP:
                break
            items = [first]
            rows, stop = self._fill(items, len(first[0]))
            if not stop and self._held is None and rows < self.max_batch and self.max_wait > 0:
                await asyncio.sleep(self.max_wait)  # give requests arriving right now a seat
                rows, stop = self._fill(items, rows)
            await self._call(loop, items)
            if stop:
                break
        if self._held is not None:
            await self._call(loop, [self._held])
            self._held = None

    async def _call(self, loop, items) -> None:
        items = [(x, fut) for x, fut in items if not fut.cancelled()]  # the client went away
        if not items:
            return
        try:
            x = items[0][0] if len(items) == 1 else self.concat([x for x, _ in items])
            outs = await loop.run_in_executor(self._executor, self.fn, x)
        except Exception as e:
            if len(items) > 1:  # one request's inputs may have broken the shared call: retry each alone,
                for item in items:  # so that only the requests that fail by themselves get the failure
                    await self._call(loop, [item])
                return
            for _, fut in items:  # keep serving
                if not fut.done():
                    fut.set_exception(e)
            return
        self.batches += 1
        self.examples += len(x)
        start = 0
        for xi, fut in items:
            end = start + len(xi)
            if not fut.done():
                fut.set_result(tuple(o[start:end] for o in outs))
            start = end
