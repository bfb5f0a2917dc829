"""What checking a checkpoint's checksums costs when a 500 MB model is loaded, side by side in one process.

    python benchmarks/checksum_cost.py [--mb 500] [--repeats 5] [--threads 1] [--dir DIR]

Writes one run directory holding an MLP of about `--mb` MB (iris inputs, three hidden layers)
through zerotune's own `save_checkpoint`, and a copy of it without ``checksums.json``, which zerotune
reads unchecked as it reads checkpoints saved before checksums existed. Then, interleaved, median of
`--repeats`, it times the same code the commands run on each copy:

- ``load_run``: what eval, export, serve, generate and finetune --from do (build the model from
  config.yaml and meta.json, then read and load the weights), the checksum computed on a second
  thread while the model is built;
- ``load_weights``: the weights alone, into a model that is already built;
- both again "cold": the checkpoint's pages dropped from the page cache first (posix_fadvise).

It prints the median wall times and the median of each round's checked/unchecked ratio, of wall
time (target: under 1.05 for ``load_run``) and of CPU time (the cost with no core to spare, where
the second thread cannot hide the checksum), and what CRC32C and SHA-256 alone take over the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zerotune.config import build_config
from zerotune.run.checksums import file_checksum
from zerotune.run.atomic import atomic_write_text
from zerotune.run.files import RunDir, write_json
from zerotune.runload.load import build_model_for, load_data, load_run
from zerotune.train import checkpoint as ckpt


def make_run(root: Path, mb: int) -> Path:
    """A run directory whose best checkpoint holds an MLP of about `mb` MB of float32 weights."""
    # 3 hidden layers of width h on iris (4 inputs, 3 classes): about 2h^2 parameters
    hidden = int((mb * 1e6 / 4 / 2) ** 0.5)
    config = build_config({"data": {"name": "iris"}, "model": {"name": "mlp", "hidden": [hidden] * 3}})
    run = RunDir(root / "checked")
    run.path.mkdir(parents=True)
    meta = load_data(config).meta
    atomic_write_text(run.config, config.to_yaml())
    write_json(run.meta, meta.to_dict())
    model = build_model_for(config, meta)
    ckpt.save_checkpoint(run.checkpoint("best"), *ckpt.model_tensors(model), {"step": 0})
    del model
    unchecked = root / "unchecked"
    shutil.copytree(run.path, unchecked)
    best = RunDir(unchecked).checkpoint("best")  # as an older zerotune saved it: no checksums, no word of them
    (best / "checksums.json").unlink()
    state = json.loads((best / "state.json").read_text())
    del state["checksums"]
    (best / "state.json").write_text(json.dumps(state))
    return run.path


def drop_cache(run: Path) -> None:
    """Ask the kernel to forget the checkpoint's pages, so the next read comes from the disk."""
    for f in RunDir(run).checkpoint("best").iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(fn) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of every thread of this process: the work done, whatever else runs."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return hashlib.sha256(m).hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=500, help="model size in MB (default 500)")
    p.add_argument("--repeats", type=int, default=5, help="rounds, interleaved (default 5)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--dir", help="where to write the two runs (default: a temporary directory, removed after)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="checksum-cost-"))
    try:
        checked = make_run(root, args.mb)
        measure(checked, root / "unchecked", args)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


def measure(checked: Path, unchecked: Path, args) -> None:
    weights = RunDir(checked).checkpoint("best") / "model.safetensors"
    size = weights.stat().st_size
    model = load_run(unchecked).model  # built once for the weights-only rows
    cases = {
        "load_run": lambda run: load_run(run),
        "load_weights": lambda run: ckpt.load_weights(RunDir(run).checkpoint("best"), model),
    }
    times: dict[tuple, list[float]] = {}
    for i in range(args.repeats):
        for cache in ("warm", "cold"):
            for name, fn in cases.items():
                pair = [("unchecked", unchecked), ("checked", checked)]
                for label, run in pair if i % 2 == 0 else pair[::-1]:  # neither always goes first
                    if cache == "cold":
                        drop_cache(run)
                    else:  # read the file once, which puts it in the page cache
                        file_checksum(RunDir(run).checkpoint("best") / "model.safetensors")
                    wall, cpu = timed(lambda: fn(run))
                    times.setdefault((name, cache, label), []).append(wall)
                    times.setdefault((name, cache, label, "cpu"), []).append(cpu)
        times.setdefault(("crc32c alone", "warm", ""), []).append(timed(lambda: file_checksum(weights))[0])
        times.setdefault(("sha256 alone", "warm", ""), []).append(timed(lambda: sha256_of(weights))[0])
    report(times, size, args)


def report(times: dict, size: int, args) -> None:
    """Median times, and the median of each round's checked/unchecked ratio (drift on a busy machine cancels)."""
    load = os.getloadavg()[0]
    print(f"model.safetensors {size / 1e6:.0f} MB, torch {torch.__version__}, {args.threads} thread(s), "
          f"median of {args.repeats}, load average {load:.1f}")
    print(f"{'what':13s} {'cache':5s} {'unchecked s':>12s} {'checked s':>10s} {'wall ratio':>11s} {'cpu ratio':>10s}")
    for name in ("load_run", "load_weights"):
        for cache in ("warm", "cold"):
            a, b = times[(name, cache, "unchecked")], times[(name, cache, "checked")]
            ca, cb = times[(name, cache, "unchecked", "cpu")], times[(name, cache, "checked", "cpu")]
            wall = statistics.median(y / x for x, y in zip(a, b))
            cpu = statistics.median(y / x for x, y in zip(ca, cb))
            print(f"{name:13s} {cache:5s} {statistics.median(a):12.3f} {statistics.median(b):10.3f} "
                  f"{wall:11.3f} {cpu:10.3f}")
    for name in ("crc32c alone", "sha256 alone"):
        t = statistics.median(times[(name, "warm", "")])
        print(f"{name:13s} {'warm':5s} {t:12.3f} {'':10s} {size / t / 1e9:8.1f} GB/s")


if __name__ == "__main__":
    main()
