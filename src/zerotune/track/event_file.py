"""One TensorBoard event file: `Event` protos as framed, checksummed records (TFRecord), in order.

Every event file zerotune writes goes through `EventFile`: a new file for a run's writer
(`EventSink`), or the end of a finished run's file for what is added after training (the doctor's
findings, a fine-tune's before/after table), so that a run keeps one file.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterable
from typing import Any

# (Summary or Event proto, step) pairs, as summaries' pure functions and the sink's jobs return them.
Records = Iterable[tuple[Any, int]]


class EventFile:
    """Appends events to one file; `create` starts a new file, `append` continues a closed one."""

    def __init__(self, path: str, mode: str):
        # imported here: tensorboardX's protos load only once something is written
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.record_writer import masked_crc32c

        self._event_cls, self._crc = Event, masked_crc32c
        self.path = path
        self._file = open(path, mode)  # noqa: SIM115 - held open for the life of the writer

    @classmethod
    def create(cls, logdir: str | os.PathLike, suffix: str = "") -> EventFile:
        """A new file in `logdir`, named as TensorBoard's writers name theirs, that starts with its version event."""
        name = f"events.out.tfevents.{str(time.time())[:10]}.{socket.gethostname()}{suffix}"
        file = cls(os.path.join(os.fspath(logdir), name), "wb")
        file.write(file._event_cls(wall_time=time.time(), file_version="brain.Event:2"))
        return file

    @classmethod
    def append(cls, path: str | os.PathLike) -> EventFile:
        """The end of an existing event file whose writer has closed it: a plain sequence of records, so
        what is added there is read as if that writer had written it."""
        return cls(os.fspath(path), "ab")

    def write(self, event) -> None:
        """One `Event` proto, framed: its length, the length's CRC, the bytes, their CRC."""
        data = event.SerializeToString()
        header = struct.pack("Q", len(data))
        self._file.write(header + struct.pack("I", self._crc(header)) + data + struct.pack("I", self._crc(data)))

    def write_records(self, records: Records) -> None:
        """Write (Summary or Event, step) records; an Event keeps its own wall time when it has one."""
        now = time.time()
        for rec, step in records:
            if isinstance(rec, self._event_cls):
                rec.step = int(step)
                if not rec.wall_time:
                    rec.wall_time = now
                self.write(rec)
            else:
                self.write(self._event_cls(summary=rec, step=int(step), wall_time=now))

    def flush(self) -> None:
        """Flush to disk (fsync): what a live board or a killed process's successor reads is there."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> EventFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def append_records(event_file: str | os.PathLike, records: Records) -> None:
    """Add (Summary, step) records at the end of a run's event file that its writer has closed."""
    with EventFile.append(event_file) as f:
        f.write_records(records)
