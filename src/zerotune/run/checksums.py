"""Checksums of a checkpoint's files: written last inside the checkpoint, checked before it is read.

``checksums.json`` holds the size and CRC32C of every other file of the checkpoint directory
(``dcp/`` shards included)::

    {"algorithm": "crc32c", "files": {"model.safetensors": {"size": 1234, "crc32c": "89abcdef"}, ...}}

CRC32C rather than SHA-256: the threat is a damaged disk or a bad copy, not an adversary, and the
`crc32c` package computes it with the CPU's CRC instructions at 7-10 GB/s on the 2-core machine,
where SHA-256 manages 1 GB/s, slower than the load itself. Checking a 500 MB model costs 2-5% of
the CPU time of loading its run, and no wall time where `runload.load` overlaps it with building the
model (benchmarks/checksum_cost.py, docs/benchmarks.md). A checkpoint without the file (saved
before zerotune wrote checksums) is read unchecked. No torch here: the doctor checks runs without it.
"""

from __future__ import annotations

import json
import mmap
import os
from pathlib import Path, PurePosixPath

import crc32c

from ..errors import UserError
from .files import CHECKSUMS_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE

ALGORITHM = "crc32c"
WEIGHTS_FILES = (STATE_FILE, MODEL_FILE)  # in every checkpoint
RESUME_FILES = (STATE_FILE, MODEL_FILE, OPTIMIZER_FILE)  # in a `last` checkpoint, to resume from


class Damaged(UserError):
    """A file of a run or checkpoint is missing, or differs from what was saved: the run is damaged, not new."""


def file_checksum(path: str | os.PathLike) -> tuple[int, str]:
    """The size of a file and its CRC32C as 8 hex digits, read through a memory map (no copy)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:  # an empty file cannot be mapped
            return 0, f"{crc32c.crc32c(b''):08x}"
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return size, f"{crc32c.crc32c(m):08x}"


def write_checksums(directory: str | os.PathLike) -> None:
    """Write ``checksums.json`` for every file under `directory` (not synced: the caller syncs the directory)."""
    directory = Path(directory)
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE):
        size, crc = file_checksum(path)
        files[path.relative_to(directory).as_posix()] = {"size": size, ALGORITHM: crc}
    text = json.dumps({"algorithm": ALGORITHM, "files": files}, indent=1, sort_keys=True)
    (directory / CHECKSUMS_FILE).write_text(text + "\n", encoding="utf-8")


def read_checksums(directory: str | os.PathLike) -> dict[str, dict] | None:
    """{relative name: {"size", "crc32c"}} from a checkpoint's ``checksums.json``; None if it has none.

    Raises:
        Damaged: when the file is there but unreadable or not in the expected shape.
    """
    file = Path(directory) / CHECKSUMS_FILE
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise Damaged(f"{file} is damaged: {str(e).splitlines()[0]}") from None
    files = raw.get("files") if isinstance(raw, dict) and raw.get("algorithm") == ALGORITHM else None
    if not isinstance(files, dict) or not all(_entry_ok(name, v) for name, v in files.items()):
        raise Damaged(f"{file} is damaged: expected {{\"algorithm\": \"{ALGORITHM}\", \"files\": "
                        f"{{name: {{\"size\", \"{ALGORITHM}\"}}}}}}")
    return files


def _entry_ok(name: str, entry) -> bool:
    parts = PurePosixPath(name).parts
    return (isinstance(entry, dict) and type(entry.get("size")) is int and isinstance(entry.get(ALGORITHM), str)
            and bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts)


def verify_checksums(directory: str | os.PathLike, names: list[str] | None = None) -> bool:
    """Check the files of a checkpoint against its ``checksums.json``: all of them, or only `names`.

    Returns:
        True when checked, False when the checkpoint has no checksums (an older zerotune saved it).

    Raises:
        Damaged: naming the first file that is missing, has another size, or another checksum.
    """
    directory = Path(directory)
    recorded = read_checksums(directory)
    if recorded is None:
        return False
    chosen = sorted(recorded) if names is None else [n for n in names if n in recorded]
    for name in chosen:  # sizes first: a cut file is reported without reading any of it
        file, want = directory / name, recorded[name]["size"]
        if not file.is_file():
            raise Damaged(f"{file} is missing: the checkpoint was saved with it ({CHECKSUMS_FILE})")
        if (size := file.stat().st_size) != want:
            raise Damaged(f"{file} is damaged: {size} bytes, {want} when it was saved ({CHECKSUMS_FILE})")
    for name in chosen:
        file, want = directory / name, recorded[name][ALGORITHM]
        if (got := file_checksum(file)[1]) != want:
            raise Damaged(f"{file} is damaged: its CRC32C is {got}, {want} when it was saved ({CHECKSUMS_FILE})")
    return True


def check_files(path: str | os.PathLike, required: tuple[str, ...] = WEIGHTS_FILES,
                names: list[str] | None = None) -> bool:
    """Refuse a checkpoint that lacks one of `required`, or whose files (all, or `names`) differ from its checksums.

    Returns:
        Whether the checksums were checked (False: the checkpoint has none).

    Raises:
        Damaged: naming the file, in one line.
    """
    for name in required:
        if not (Path(path) / name).is_file():
            raise Damaged(f"checkpoint {path} is damaged: {name} is missing")
    return verify_checksums(path, names)
