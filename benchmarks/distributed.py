"""Data-parallel training on one machine: 1 process × 2 threads against 2 processes × 1 thread.

Run from the repository root::

    python benchmarks/distributed.py
    python benchmarks/distributed.py --repeats 2 --cnn-epochs 10 --gpt-steps 250

For the digits CNN recipe and the short GPT recipe (Tiny Shakespeare), it trains the same run
three ways, each in a fresh `zerotune train` process, in turn (so that drifts in the machine's load
hit every mode alike):

* ``1x1``: one process, one thread (the base of the scaling efficiency);
* ``1x2``: one process, two threads (what the machine's cores give one process);
* ``2x1``: ``--nproc 2``, two DDP ranks of one thread each, the global batch split between them.

It reports training throughput (examples per second of training, from metrics.json: start-up
and the final evaluation excluded), the share of each step rank 0 spent in collectives (the
``dist/collective_share`` TensorBoard scalar: the gradient all-reduce, waiting for the other rank
included), and the scaling efficiency: throughput of 2x1 over twice that of 1x1 (1.0: two
processes do twice the work of one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["log.progress=false", "log.graph=false", "log.embeddings=false", "log.histograms_every=0",
         "log.layer_stats_every=0", "log.images=false"]
MODES = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}  # processes, threads per process


def workloads(args) -> dict[str, tuple[str, list[str]]]:
    """name -> (recipe, overrides)."""
    return {
        "digits CNN": ("recipes/digits_cnn.toml", [f"train.epochs={args.cnn_epochs}"]),
        "short GPT": ("recipes/shakespeare_char_gpt.toml", [f"train.max_steps={args.gpt_steps}",
                                                            "log.sample_tokens=0", "log.attention_maps=false"]),
    }


def train_once(recipe: str, overrides: list[str], procs: int, threads: int, runs: Path, name: str) -> dict:
    """One `zerotune train` in its own process; its metrics.json and rank 0's dist/ scalars."""
    sets = [*QUIET, *overrides, f"train.threads={threads}", f"log.dir={runs}", f"log.name={name}"]
    cmd = [sys.executable, "-m", "zerotune", "train", str(ROOT / recipe), *[a for s in sets for a in ("--set", s)]]
    if procs > 1:
        cmd += ["--nproc", str(procs)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    metrics = json.loads((runs / name / "metrics.json").read_text())
    config = yaml.safe_load((runs / name / "config.yaml").read_text())
    t = metrics["training"]
    examples = t["steps"] * config["train"]["batch_size"] * config["train"]["accumulate"]
    return {"throughput": examples / t["seconds"], "seconds": t["seconds"], "steps": t["steps"],
            "share": _mean_scalar(runs / name, "dist/collective_share")}


def _mean_scalar(run: Path, tag: str) -> float | None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return None
    return statistics.mean(e.value for e in acc.Scalars(tag)[1:] or acc.Scalars(tag))  # the first has start-up in it


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1, help="runs of each mode (taken in turn; medians reported)")
    p.add_argument("--cnn-epochs", type=int, default=10, help="epochs of the digits CNN recipe")
    p.add_argument("--gpt-steps", type=int, default=250, help="optimizer steps of the short GPT recipe")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for work, (recipe, overrides) in workloads(args).items():
            got: dict[str, list[dict]] = {m: [] for m in MODES}
            for r in range(args.repeats):
                for mode, (procs, threads) in MODES.items():
                    got[mode].append(train_once(recipe, overrides, procs, threads, Path(tmp), f"{work[:3]}-{mode}-{r}"))
            report(work, got)


def report(work: str, got: dict[str, list[dict]]) -> None:
    med = {m: statistics.median(r["throughput"] for r in runs) for m, runs in got.items()}
    print(f"\n{work}: {got['1x1'][0]['steps']} steps")
    print(f"{'mode':6} {'examples/s':>11} {'train s':>8} {'collective share':>17}")
    for mode, runs in got.items():
        shares = [r["share"] for r in runs if r["share"] is not None]
        share = f"{statistics.median(shares):.1%}" if shares else "-"
        print(f"{mode:6} {med[mode]:11.0f} {statistics.median(r['seconds'] for r in runs):8.1f} {share:>17}")
    print(f"scaling efficiency 2x1 / (2 × 1x1): {med['2x1'] / (2 * med['1x1']):.2f};  "
          f"2x1 / 1x2: {med['2x1'] / med['1x2']:.2f};  1x2 / 1x1: {med['1x2'] / med['1x1']:.2f}")


if __name__ == "__main__":
    main()
