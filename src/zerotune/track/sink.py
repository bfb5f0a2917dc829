"""The event file of a run, written by one background thread.

The training thread only appends to a list (scalars) or a bounded queue (heavy jobs); tensors
are turned into numbers in the background thread, so no device sync happens per step. The
thread writes the events through `EventFile` (track/event_file.py), batching
all the scalars of one step into one event, which is several times cheaper than one event per
``add_scalar`` call. The file is flushed every ``flush_secs``, so a live board sees new points
and a killed run loses at most that much.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable

import torch

from ..errors import disk_error
from . import summaries
from .event_file import EventFile, Records

_file_counter = itertools.count()


class EventSink:
    """Owns the event file of one run directory.

    Args:
        logdir: the run directory.
        flush_secs: seconds between flushes to disk.
        purge_step: on resume, the first step the resumed run logs again; events a killed run
            wrote at this step or later are hidden by TensorBoard's readers (those before it stay).
        interval: seconds between drains of the scalar list.
        max_jobs: heavy jobs that may wait; the training thread blocks when more are pending,
            which bounds memory if summaries are asked for faster than they can be written.
        record_memory: add the process's memory use (``perf/*memory_mb``) at each drain of the
            scalar list; off for runs that do not train a torch model (``zerotune scratch``).
    """

    def __init__(self, logdir, flush_secs: float = 2.0, purge_step: int | None = None,
                 interval: float = 0.5, max_jobs: int = 16, record_memory: bool = True):
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        self.logdir = str(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        # Readers take a directory's files in name order, and a restart marker only hides what
        # was read before it; so a new file must sort after every file already there, also one
        # a killed process opened in the same second (its pid may sort after ours). The number
        # of files already there, zero-padded, does that; pid and counter keep names unique.
        opened = sum(1 for name in os.listdir(self.logdir) if ".tfevents." in name)
        suffix = f".{opened:05d}.{os.getpid()}.{next(_file_counter):05d}"
        self._events = EventFile.create(self.logdir, suffix)
        self.path = self._events.path
        self._event_cls = Event
        if purge_step is not None:
            # The same marker tf.summary writers leave after a restart: readers drop older
            # events with step >= purge_step.
            self._events.write(Event(step=purge_step, wall_time=time.time(),
                                     session_log=SessionLog(status=SessionLog.START)))
        # A deque, never replaced: append and popleft are atomic, so no point is lost between a
        # training-thread append and a drain (swapping in a new list could orphan one).
        self._scalars: collections.deque[tuple[int, float, tuple]] = collections.deque()
        self._jobs: queue.Queue = queue.Queue(max_jobs)
        self._lock = threading.Lock()  # one writer of the file at a time (thread vs. explicit flush)
        self._flush_secs = flush_secs
        self._last_flush = time.monotonic()
        self._last_step = 0
        self._memory = _memory_probe() if record_memory else dict
        self.errors: list[str] = []
        self.disk_error: OSError | None = None  # set when the file could not be written: no more events
        self.busy_seconds = 0.0  # CPU time the writer thread spent working (for overhead accounting)
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True, name="zerotune-events")
        self._thread.start()
        # A run that dies with an exception never reaches on_fit_end; its last points are the
        # ones that explain why, so they are written at interpreter exit.
        ref = weakref.ref(self)
        atexit.register(lambda: (s := ref()) is not None and s.close())

    # -- called from the training thread ------------------------------------------------------

    def scalars(self, step: int, items: tuple) -> None:
        """Queue scalars of one step; costs one list append.

        Args:
            step: the global step.
            items: (tag, value) pairs, value a float or a 0-d tensor; or (tags, tensor) pairs
                with a tuple of tags and a 1-d tensor of as many values (read with one copy).
        """
        self._scalars.append((step, time.time(), items))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        """One scalar, as ``SummaryWriter.add_scalar`` (for a few values now and then)."""
        self.scalars(step, ((summaries.writer_tag(tag), value),))

    def add_text(self, tag: str, markdown: str, step: int) -> None:
        """A text summary, as ``SummaryWriter.add_text``."""
        self.write([(summaries.text(tag, markdown), step)])

    def add_image(self, tag: str, hwc_uint8, step: int) -> None:
        """An (H, W, 3) or (H, W, 1) uint8 image, written now (figures of a finished computation)."""
        self.write([(summaries.image(summaries.writer_tag(tag), hwc_uint8), step)])

    def add_histogram(self, tag: str, values, step: int) -> None:
        """A histogram of host values, as ``SummaryWriter.add_histogram``, written now."""
        self.write([(summaries.values_histogram(tag, values), step)])

    def submit(self, fn: Callable[..., Records | None], *args, **kwargs) -> None:
        """Run ``fn(*args, **kwargs)`` in the background and write the records it returns."""
        if self._closed:
            return
        self._jobs.put((fn, args, kwargs))

    def write(self, records: Records) -> None:
        """Write records now, from the calling thread (for small, rare summaries)."""
        with self._lock, self._disk():
            if self._writable:
                self._write(records)

    def flush(self) -> None:
        """Write everything queued so far and flush the file (waits for pending jobs)."""
        if self._closed:
            return
        done = threading.Event()
        self._jobs.put((done.set, (), {}))
        while not done.wait(0.05):
            if not self._thread.is_alive():
                break
        with self._lock, self._disk():
            if self._writable:
                self._drain_scalars()
                self._events.flush()

    def close(self) -> None:
        """Finish every job, write the remaining scalars and close the file."""
        if self._closed:
            return
        self._stop.set()
        self._jobs.put(None)  # wakes the thread if it is waiting for a job
        self._thread.join()
        self._closed = True
        with self._lock, self._disk():
            t0 = time.thread_time()
            if self._writable:
                self._run_jobs()
                self._drain_scalars()
            self._events.close()
            self.busy_seconds += time.thread_time() - t0

    @contextlib.contextmanager
    def _disk(self):
        """Stop writing for good when the disk is full or read-only, with one warning naming the file.

        The events are a view of the run: training goes on, and a checkpoint that needs the same disk
        fails with the error itself (see `errors.disk_error`). Nothing more is written after a failed
        write, whose cut record would hide what follows it from TensorBoard's readers.
        """
        try:
            yield
        except OSError as e:
            if disk_error(e) is None:
                raise
            if self.disk_error is None:  # said once; closing the file may fail the same way
                self.disk_error = e
                self._stop.set()
                named = OSError(e.errno, e.strerror, self.path) if self.path else e  # a write() names no file
                print(f"warning: TensorBoard events stopped: {disk_error(named)}", file=sys.stderr)

    @property
    def _writable(self) -> bool:
        return self.disk_error is None

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- background thread ----------------------------------------------------------------------

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=interval)
            except queue.Empty:
                job = None
            with self._lock, self._disk():
                if not self._writable:
                    return
                t0 = time.thread_time()
                if job is not None:
                    self._call(*job)
                elif self._stop.is_set():
                    return
                self._drain_scalars()
                if time.monotonic() - self._last_flush >= self._flush_secs:
                    self._events.flush()
                    self._last_flush = time.monotonic()
                self.busy_seconds += time.thread_time() - t0

    def _run_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                self._call(*job)

    def _call(self, fn, args, kwargs) -> None:
        try:
            records = fn(*args, **kwargs)
            if records:
                self._write(records)
        except Exception as e:  # noqa: BLE001 - a summary that fails must never stop training
            if isinstance(e, OSError) and disk_error(e) is not None:
                raise  # the file, not the summary: `_disk` stops the writing
            msg = f"{getattr(fn, '__name__', 'summary')}: {type(e).__name__}: {e}"
            if msg not in self.errors:
                self.errors.append(msg)
                print(f"warning: TensorBoard summary skipped ({msg})", file=sys.stderr)

    def _write(self, records: Records) -> None:
        self._events.write_records(records)

    def _drain_scalars(self) -> None:
        batch = []
        while self._scalars:
            batch.append(self._scalars.popleft())
        if not batch:
            return
        for step, wall, items in batch:
            values: list[tuple[str, float]] = []
            for tag, value in items:
                if type(tag) is tuple:
                    values.extend(zip(tag, _to_floats(value)))
                else:
                    values.append((tag, value.item() if isinstance(value, torch.Tensor) else float(value)))
            self._events.write(self._event_cls(summary=summaries.scalars(values), step=step, wall_time=wall))
            self._last_step = max(self._last_step, step)
        mem = self._memory()
        if mem:
            self._events.write(self._event_cls(summary=summaries.scalars(mem.items()),
                                               step=self._last_step, wall_time=batch[-1][1]))


def _to_floats(value) -> list[float]:
    return value.detach().cpu().tolist() if isinstance(value, torch.Tensor) else [float(v) for v in value]


def _memory_probe() -> Callable[[], dict[str, float]]:
    """A function returning memory use in MiB: CUDA allocated/peak when CUDA is in use, else RSS."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        def cuda() -> dict[str, float]:
            return {"perf/gpu_memory_mb": torch.cuda.memory_allocated() / 2**20,
                    "perf/gpu_peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20}
        return cuda
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm", "rb"):  # Linux only
            pass
    except (OSError, ValueError, AttributeError):
        return dict

    def rss() -> dict[str, float]:
        # opened at each drain (microseconds): a file kept open would outlive the sink, to the next GC
        with open("/proc/self/statm", "rb") as statm:
            return {"perf/rss_memory_mb": int(statm.read().split()[1]) * page / 2**20}
    return rss

