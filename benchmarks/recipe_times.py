"""Each recipe's stated training time against the time it takes here, on this machine's CPU.

    python benchmarks/recipe_times.py [--only NAME ...] [--skip NAME ...] [--threads N]

A recipe states its time in its header comment, on a line of its own::

    # Time: about 12 s on 2 CPU cores (AVX2).

The recipe is trained as its first comment line says (``zerotune train RECIPE``), each in a process
of its own, one after another, and the wall time of its training (process start to exit) is
printed beside the stated one, with their ratio and the run's headline figure (test accuracy or
validation loss). The CPU's speed-relevant features (AVX2, AVX512, AVX512-BF16, AMX, VNNI) head the table: bf16 and int8 kernels differ most between them. The target is a ratio within 1.5
on a 2-core AVX2 machine; the load average at the start and end is printed, since a busy machine
measures slow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
STATED = re.compile(r"^#\s*Time:\s*about\s+([\d.]+)\s*(s|min)\b", re.IGNORECASE)
FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni")


def stated_seconds(recipe: Path) -> float | None:
    """The time the recipe's header states (``# Time: about N s|min ...``), in seconds; None if it states none."""
    for line in recipe.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        m = STATED.match(line)
        if m:
            return float(m.group(1)) * (60 if m.group(2).lower() == "min" else 1)
    return None


def command(recipe: Path) -> list[str]:
    """The recipe's own command: its first comment line, e.g. ``zerotune train recipes/x.toml``."""
    first = recipe.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
    return shlex.split(first)


def cpu_features() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    have = set(flags.split(":", 1)[1].split())
    return ", ".join(f for f in FEATURES if f in have) or "none of " + ", ".join(FEATURES)


def train(argv: list[str], runs: Path, name: str, threads: int | None) -> float:
    """Wall seconds of one zerotune command, run from the repository root with its runs under `runs`."""
    args = [sys.executable, "-m", "zerotune", *argv[1:], "--runs-dir", str(runs), "--name", name, "--no-progress"]
    if threads:
        args += ["--set", f"train.threads={threads}"]
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return seconds


def result(run: Path) -> str:
    """The run's headline figure from metrics.json: test accuracy, else validation loss, else test loss."""
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    for split, key in (("test", "accuracy"), ("val", "loss"), ("test", "loss")):
        value = (metrics.get(split) or {}).get(key)
        if isinstance(value, (int, float)):
            return f"{split} {key} {value:.4f}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="recipe names (stems) to run, default all that state a time")
    parser.add_argument("--skip", nargs="*", default=[], help="recipe names (stems) to leave out")
    parser.add_argument("--threads", type=int, default=None, help="train.threads (default: the recipe's)")
    args = parser.parse_args()

    recipes = [r for r in sorted(RECIPES.glob("*.to*ml")) + sorted(RECIPES.glob("*.yaml"))
               if stated_seconds(r) is not None and (args.only is None or r.stem in args.only) and r.stem not in args.skip]
    print(f"CPU: {os.cpu_count()} cores; features: {cpu_features()}; load average at start: "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'recipe':36} {'stated':>9} {'measured':>9} {'ratio':>6}  result", flush=True)
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="zerotune-recipe-times-") as tmp:
        runs = Path(tmp)
        for recipe in recipes:
            argv = command(recipe)
            if argv[:2] != ["zerotune", "train"]:
                raise SystemExit(f"{recipe.name}: a stated time is for a recipe trained by 'zerotune train', not {argv[:2]}")
            seconds = train(argv, runs, recipe.stem, args.threads)
            stated = stated_seconds(recipe)
            worst = max(worst, seconds / stated)
            print(f"{recipe.name:36} {stated:8.0f}s {seconds:8.1f}s {seconds / stated:6.2f}  "
                  f"{result(runs / recipe.stem)}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}; largest ratio {worst:.2f} (target: within 1.5)")


if __name__ == "__main__":
    main()
