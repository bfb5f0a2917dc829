"""Batched generation for the language-model server: concurrent requests share each decode step.

The worker thread takes the first waiting request, waits up to ``max_wait_ms`` for more (at most
``max_batch``), prefills them together (left-padded, see `zerotune.lm.textmodel`) and then runs
one forward per step for the whole batch. With a model that supports it (``keep`` and ``join``:
the GPT, and a Hugging Face model with a plain dynamic cache), batching is continuous: finished
rows leave after each step, and waiting requests join between steps when their prompt fits
before the batch's position and their tokens fit in the context. Otherwise a batch runs until
every row is done and requests arriving meanwhile form the next one. A batch shares one KV cache, so it only takes requests with
``longest prompt + most new tokens <= context``; alone, every valid request fits.

The steps themselves are the one decode loop (`zerotune.lm.decode`), which `zerotune generate`
and instruction-tuning evaluation also use; this module owns the waiting queue and the threads.
Each row samples with its own options and its own seeded generator, so a row's tokens do not
depend on its neighbours: at temperature 0, batched output equals one-at-a-time output.

Tokens go back to the asyncio side through each job's queue, then ``None`` when the row is done.
The consumer sets ``job.cancelled`` (stop string seen, client gone) and the row stops at the next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

from ..lm.decode import Counts, Row, decode
from ..lm.sampler import Sampler


class Job(Row):
    """One request's generation: a `Row` (prompt ids, budget, sampling options; ``eos`` when the model
    ended the text itself) and the queue its tokens go to."""

    def __init__(self, prompt: list[int], max_tokens: int, temperature: float = 1.0, top_p: float | None = None,
                 seed: int | None = None):
        super().__init__(list(prompt), max_tokens, Sampler(temperature, None, top_p, seed))
        self.queue: asyncio.Queue = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None

    def _emit(self, item) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


def _deliver(items: list[tuple[Job, int | None]]) -> None:
    for job, item in items:
        job.queue.put_nowait(item)


def _emit_all(items: list[tuple[Job, int | None]]) -> None:
    """Hand a step's tokens to their jobs with one wake-up of each event loop (one per step, not per row)."""
    loops: dict = {}
    for job, item in items:
        loops.setdefault(job.loop, []).append((job, item))
    for loop, part in loops.items():
        loop.call_soon_threadsafe(_deliver, part)


class Scheduler:
    """Runs jobs on a `TextModel` in batches, in one worker thread.

    Counters (for /metadata and tests): ``batches`` (batches started), ``sequences`` (jobs done),
    ``largest_batch`` (most live rows in one step), ``steps`` (forwards), ``batched_steps`` (forwards
    with more than one live row) and ``joined`` (jobs that joined a running batch).
    """

    def __init__(self, model, max_batch: int = 8, max_wait_ms: float = 5.0):
        self.model = model
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches = self.sequences = 0
        self.counts = Counts()  # steps, batched_steps, largest_batch, joined: kept by the decode loop

    def start(self) -> None:
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="zerotune-lm-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish every job already submitted, then end the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def submit(self, job: Job) -> Job:
        job.loop = job.loop or asyncio.get_running_loop()
        job.stop_id = self.model.eos_id
        with self._cond:
            self._waiting.append(job)
            self._cond.notify()
        return job

    def stats(self) -> dict[str, int]:
        c = self.counts
        return {"batches": self.batches, "sequences": self.sequences, "largest_batch": c.largest_batch,
                "steps": c.steps, "batched_steps": c.batched_steps, "joined": c.joined}

    @property
    def steps(self) -> int:
        return self.counts.steps

    @property
    def largest_batch(self) -> int:
        return self.counts.largest_batch

    @property
    def batched_steps(self) -> int:
        return self.counts.batched_steps

    @property
    def joined(self) -> int:
        return self.counts.joined

    def _take(self) -> list[Job] | None:
        """The next batch: the first waiting job and what arrives within the window and fits with it."""
        with self._cond:
            while not self._waiting:
                if self._closing:
                    return None
                self._cond.wait()
            deadline = time.monotonic() + self.max_wait
            while len(self._waiting) < self.max_batch and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch, keep = [], deque()
            while self._waiting:
                job = self._waiting.popleft()
                if job.cancelled:  # its client left before it started
                    job._emit(None)
                    continue
                rows = [*batch, job]
                fits = max(len(j.prompt) for j in rows) + max(j.max_tokens for j in rows) <= self.model.context_length
                (batch if fits and len(batch) < self.max_batch else keep).append(job)
            self._waiting = keep
            return batch

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:  # every job waiting had been cancelled
                continue
            try:
                self._run(batch)
            except Exception as e:  # a model failure ends this batch's requests, not the server
                logging.getLogger("uvicorn.error").exception("zerotune: generation failed")
                for job in batch:
                    job._emit(e)

    def _run(self, batch: list[Job]) -> None:
        self.batches += 1
        for handout in decode(self.model, batch, self, self.max_batch, self.counts):
            self.sequences += sum(tok is None for _, tok in handout)
            _emit_all(handout)

    def send_back(self, jobs: list[Job]) -> None:
        """Jobs the running batch could not take after all: first in line for the next batch."""
        with self._cond:
            self._waiting.extendleft(reversed(jobs))

    def admit(self, pos: int, room: int) -> list[Job]:
        """Waiting jobs that can join a running batch whose cache holds ``pos`` slots."""
        if room <= 0:
            return []
        with self._cond:
            joining, keep = [], deque()
            for job in self._waiting:
                if job.cancelled:
                    job._emit(None)
                elif len(joining) < room and len(job.prompt) <= pos and pos + job.max_tokens <= \
                        self.model.context_length:
                    joining.append(job)
                else:
                    keep.append(job)
            self._waiting = keep
        return joining
