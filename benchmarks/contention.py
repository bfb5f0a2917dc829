"""Training beside other work: the digits recipe on an idle machine and beside busy processes, with the
old defaults (OpenMP's own wait policy: waiting threads spin) and the new ones (zerotune sets
OMP_WAIT_POLICY=PASSIVE before torch loads when other processes are running, src/zerotune/compute/omp.py).

    python benchmarks/contention.py [--epochs 5] [--repeats 2] [--busy 2] [--threads N] [--only idle|busy]

Each training runs in a fresh subprocess, since OpenMP reads its wait policy once, when torch loads.
"old" imports torch before zerotune with OMP_WAIT_POLICY unset, which is how every run started before
the change; "new" imports zerotune first. The busy processes are pure-Python loops, one per core by
default, started and stopped by this script. Runs alternate between old and new, so drift in the
machine's load hits both alike; each line names the wait policy the run got. Prints wall and CPU
seconds of the `zerotune.train` call (median of the repeats), the load average at the start of each
condition, and the ratios: contended/idle for the new defaults (target <= 2) and idle old/new
(target >= 0.97: not slower). On an idle machine the new defaults are the old ones; on a shared one
even the "idle" runs may get the passive policy, since other processes are running then.
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

CORES = len(os.sched_getaffinity(0))  # what OpenMP sizes its thread team by, also under taskset
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits_cnn.toml"

# Times one training; "old" loads torch (and with it OpenMP) before zerotune can set the wait policy.
CHILD = """
import json, os, sys, time
if sys.argv[1] == "old":
    import torch
import zerotune
policy = "OpenMP's own" if sys.argv[1] == "old" else os.environ.get("OMP_WAIT_POLICY", "OpenMP's own")
from zerotune.config import load_config
cfg = load_config(sys.argv[2], sys.argv[3:])
wall, cpu = time.perf_counter(), time.process_time()
zerotune.train(cfg)
import torch
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "threads": torch.get_num_threads(), "policy": policy}))
"""

# Variables that would decide the thread count or wait policy behind the benchmark's back.
CLEARED = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def train_once(mode: str, overrides: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(RECIPE), *overrides], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_busy(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
        p.wait()


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--busy", type=int, default=CORES, help="busy processes beside the contended runs")
    p.add_argument("--threads", type=int, default=None, help="train.threads (default: unset, torch's choice)")
    p.add_argument("--only", choices=("idle", "busy"), help="measure one condition only")
    args = p.parse_args()
    conds = (args.only,) if args.only else ("idle", "busy")

    times: dict[tuple[str, str], list[dict]] = {}
    loads: dict[str, list[str]] = {"idle": [], "busy": []}
    with tempfile.TemporaryDirectory() as root:
        base = ["log.progress=false", f"log.dir={root}", f"train.epochs={args.epochs}"]
        if args.threads:
            base.append(f"train.threads={args.threads}")
        train_once("new", base + ["train.epochs=1", "log.name=warmup"])  # warm the file cache and the dataset
        for i in range(args.repeats):
            for cond in conds:
                busy = start_busy(args.busy) if cond == "busy" else []
                try:
                    loads[cond].append(load())
                    order = ("old", "new") if i % 2 == 0 else ("new", "old")
                    for mode in order:
                        r = train_once(mode, base + [f"log.name={mode}-{cond}-{i}"])
                        times.setdefault((mode, cond), []).append(r)
                        print(f"  {cond:<5}{mode:<4} wall {r['wall']:6.1f} s  cpu {r['cpu']:6.1f} s  "
                              f"wait policy {r['policy']:<13} load {load()}", flush=True)
                finally:
                    stop_busy(busy)

    def med(mode, cond, key):
        return statistics.median(r[key] for r in times[(mode, cond)])

    threads = times[("new", conds[0])][0]["threads"]
    print(f"\ndigits CNN recipe, {args.epochs} epochs, {threads} torch threads, {CORES} cores, "
          f"{args.busy} busy processes; median of {args.repeats}")
    for cond in conds:
        print(f"load average (1/5/15 min) before the {cond} runs: {', '.join(loads[cond])}")
    print(f"{'defaults':<10}" + "".join(f"{c + ' wall':>11}{c + ' cpu':>10}" for c in conds)
          + (f"{'busy/idle':>11}" if len(conds) == 2 else ""))
    for mode in ("old", "new"):
        row = "".join(f"{med(mode, c, 'wall'):>10.1f}s{med(mode, c, 'cpu'):>9.1f}s" for c in conds)
        if len(conds) == 2:
            row += f"{med(mode, 'busy', 'wall') / med(mode, 'idle', 'wall'):>11.2f}"
        print(f"{mode:<10}{row}")
    if len(conds) == 2:
        contended = med("new", "busy", "wall") / med("new", "idle", "wall")
        print(f"new defaults, contended/idle: {contended:.2f} (target <= 2)")
    if "idle" in conds:
        print(f"idle, old/new:                {med('old', 'idle', 'wall') / med('new', 'idle', 'wall'):.3f} "
              "(target >= 0.97)")
    if "busy" in conds:
        print(f"contended, old/new:           {med('old', 'busy', 'wall') / med('new', 'busy', 'wall'):.2f}")

if __name__ == "__main__":
    main()
