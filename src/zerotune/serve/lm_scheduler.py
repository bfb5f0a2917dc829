"""Batched generation for the language-model server: concurrent requests share each decode step.

The worker thread takes the first waiting request, waits up to ``max_wait_ms`` for more (at most
``max_batch``), prefills them together (left-padded, see `zerotune.lm.textmodel`) and then runs
one forward per step for the whole batch. With a model that supports it (``keep`` and ``join``:
the GPT, and a Hugging Face model with a plain dynamic cache), batching is continuous: finished
rows leave after each step, and waiting requests join between steps when their prompt fits
before the batch's position and their tokens fit in the context. Otherwise a batch runs until
every row is done and requests arriving meanwhile form the next one. A batch shares one KV cache, so it only takes requests with
``longest prompt + most new tokens <= context``; alone, every valid request fits.

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
from dataclasses import dataclass, field

import torch

from ..lm.sampling import filter_logits


@dataclass(eq=False)
class Job:
    """One request's generation: its prompt ids, options and the queue its tokens go to."""

    prompt: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float | None = None
    seed: int | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    loop: asyncio.AbstractEventLoop | None = None
    cancelled: bool = False
    eos: bool = False  # the model ended the text itself
    generated: int = 0
    gen: torch.Generator | None = None

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
        self.batches = self.sequences = self.largest_batch = self.steps = self.batched_steps = self.joined = 0

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
        if job.temperature > 0:
            job.gen = torch.Generator(device=getattr(self.model, "device", "cpu"))
            job.gen.seed() if job.seed is None else job.gen.manual_seed(int(job.seed))
        with self._cond:
            self._waiting.append(job)
            self._cond.notify()
        return job

    def stats(self) -> dict[str, int]:
        return {"batches": self.batches, "sequences": self.sequences, "largest_batch": self.largest_batch,
                "steps": self.steps, "batched_steps": self.batched_steps, "joined": self.joined}

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
        state, logits = self.model.prefill([j.prompt for j in batch])
        pos = max(len(j.prompt) for j in batch)  # slots of the shared cache in use
        self.steps += 1
        continuous = hasattr(self.model, "join") and hasattr(self.model, "keep")
        live = [True] * len(batch)
        while True:
            self.largest_batch = max(self.largest_batch, sum(live))
            tokens = self._pick(logits, batch, live)
            live = self._hand_out(batch, tokens, live)
            rows = [i for i, alive in enumerate(live) if alive]
            if not rows:
                return
            if continuous and len(rows) < len(batch):  # finished rows leave the batch
                state = self.model.keep(state, rows)
                batch, tokens, live = [batch[i] for i in rows], tokens[rows], [True] * len(rows)
            logits = self.model.step(state, tokens)
            pos += 1
            self.steps += 1
            self.batched_steps += len(rows) > 1
            newcomers = self._admit(pos, self.max_batch - len(batch)) if continuous else []
            if newcomers:  # waiting requests join between steps
                extra = self.model.join(state, [j.prompt for j in newcomers])
                if extra is None:  # this cache cannot take new rows: they start the next batch
                    continuous = False
                    self._return(newcomers)
                    continue
                logits = torch.cat([logits, extra])
                batch, live = batch + newcomers, live + [True] * len(newcomers)
                self.joined += len(newcomers)

    def _hand_out(self, batch: list[Job], tokens: torch.Tensor, live: list[bool]) -> list[bool]:
        """Give each live row its token (or its end); the rows still live afterwards."""
        out, live = [], list(live)
        for i, job in enumerate(batch):
            if not live[i]:
                continue
            tok = int(tokens[i])
            if job.cancelled or tok == self.model.eos_id:
                job.eos = not job.cancelled
            else:
                job.generated += 1
                out.append((job, tok))
            if job.cancelled or job.eos or job.generated >= job.max_tokens:
                live[i] = False
                self.sequences += 1
                out.append((job, None))
        _emit_all(out)
        return live

    def _return(self, jobs: list[Job]) -> None:
        with self._cond:
            self._waiting.extendleft(reversed(jobs))

    def _admit(self, pos: int, room: int) -> list[Job]:
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

    @staticmethod
    def _pick(logits: torch.Tensor, batch: list[Job], live: list[bool]) -> torch.Tensor:
        """One token per row (B,): greedy rows by argmax, the others sampled with their own generator."""
        logits = logits.float()
        tokens = logits.argmax(dim=-1)
        for i, job in enumerate(batch):
            if live[i] and job.temperature > 0:
                probs = filter_logits(logits[i] / job.temperature, None, job.top_p).softmax(dim=-1)
                tokens[i] = torch.multinomial(probs, 1, generator=job.gen)[0]
        return tokens
