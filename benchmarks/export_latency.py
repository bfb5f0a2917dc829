"""Inference latency of one run's model in PyTorch eager, TorchScript and onnxruntime, side by side.

    zerotune train recipes/digits_cnn.toml --runs-dir /tmp/ship --name cnn --set train.epochs=5
    python benchmarks/export_latency.py /tmp/ship/cnn [--threads 1] [--iters 300] [--rounds 5]

All three runtimes are measured in this one process on the same inputs (the run's test examples),
in interleaved rounds so that background load hits them alike; each figure is the median over
rounds of that round's p50 (or p95). Target: onnxruntime at least 1.5x faster than PyTorch eager
at batch 1 for the digits CNN.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from zerotune.export.build import ExportContext, ExportOptions, build_export
from zerotune.export.compare import latency_ms
from zerotune.export.inputs import load_data
from zerotune.export.runtime import torch_runner
from zerotune.runload.load import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for every runtime (default: 1)")
    p.add_argument("--iters", type=int, default=300, help="timed calls per round and batch size")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    run = load_run(a.run)
    ctx = ExportContext.create(run, load_data(run))
    runners = {
        "pytorch eager": torch_runner(ctx.model, ctx.signature),
        "torchscript": build_export(ctx, ExportOptions("torchscript")).runner,
        "onnxruntime": build_export(ctx, ExportOptions("onnx"), threads=a.threads).runner,
    }
    batches = {b: np.ascontiguousarray(np.resize(ctx.x, (b, *ctx.x.shape[1:]))) for b in (1, 32)}
    stats = {(name, b): [] for name in runners for b in batches}
    for _ in range(a.rounds):
        for b, x in batches.items():
            for name, run_fn in runners.items():
                stats[name, b].append(latency_ms(run_fn, x, a.iters))

    print(f"run {a.run} ({run.config.model.name}, input {run.meta.input_shape}), {a.threads} thread(s), "
          f"{a.rounds} rounds x {a.iters} calls, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'runtime':<15} {'b1 p50 ms':>10} {'b1 p95 ms':>10} {'b32 p50 ms':>11} {'b32 p95 ms':>11}")
    med = {k: (float(np.median([s[0] for s in v])), float(np.median([s[1] for s in v]))) for k, v in stats.items()}
    for name in runners:
        (p50_1, p95_1), (p50_32, p95_32) = med[name, 1], med[name, 32]
        print(f"{name:<15} {p50_1:>10.4f} {p95_1:>10.4f} {p50_32:>11.4f} {p95_32:>11.4f}")
    for b in batches:
        eager = med["pytorch eager", b][0]
        print(f"batch {b:>2}: onnxruntime {eager / med['onnxruntime', b][0]:.2f}x faster than eager, "
              f"torchscript {eager / med['torchscript', b][0]:.2f}x (p50)")
    print("target: onnxruntime >= 1.5x faster than eager at batch 1")


if __name__ == "__main__":
    main()
