"""Dequantizing a GGUF file into a transformers directory (`zerotune models install`, `--from file.gguf`), with
the file parsed once against transformers reading it as it does by itself.

    python benchmarks/gguf_dequantize.py FILE.gguf [--repeats 2] [--threads 1]

transformers opens the file for its config, its tokenizer and its weights, and each opening parses
every metadata field; `quiet_gguf_reader` hands it one parsed reader and builds gguf's tensor-name
table once. Both ways write a directory; the script checks that they hold the same bytes, and prints
each way's best wall time over --repeats, alternating the two in one process.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import io
import tempfile
import time
from pathlib import Path


@contextlib.contextmanager
def as_transformers_reads_it():
    """transformers' reader as it is: a parse per opening, the name table per module (warnings off alike)."""
    from zerotune.models.hf_logging import quiet_transformers

    quiet_transformers()
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bar, as the shared way hides it in a log
        yield


def dequantize(path: Path, out: Path, shared: bool) -> float:
    from zerotune.models import gguf_source

    t0 = time.perf_counter()
    with gguf_source.quiet_gguf_reader() if shared else as_transformers_reads_it():
        gguf_source._save_transformers(path, out)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    best = {True: float("inf"), False: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for shared in (False, True):
                best[shared] = min(best[shared], dequantize(args.file, Path(tmp) / f"{shared}-{i}", shared))
        same = filecmp.dircmp(Path(tmp) / "False-0", Path(tmp) / "True-0")
        identical = not (same.diff_files or same.left_only or same.right_only) and all(
            filecmp.cmp(Path(tmp) / "False-0" / f, Path(tmp) / "True-0" / f, shallow=False) for f in same.common_files)
    print(f"{args.file.name}, {args.threads} thread(s), best of {args.repeats}")
    print(f"  as transformers reads it: {best[False]:.1f} s")
    print(f"  parsed once:              {best[True]:.1f} s  ({best[False] / best[True]:.2f}x faster)")
    print(f"  same bytes written: {'yes' if identical else 'NO'}")


if __name__ == "__main__":
    main()
