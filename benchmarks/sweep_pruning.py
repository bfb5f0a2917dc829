"""How many training steps `zerotune sweep --prune` saves: the same sweep (recipe, parameters, sampler,
seed, trial budget) run without and with pruning, optimizer steps counted from the trials' run directories.

    python benchmarks/sweep_pruning.py [--recipe recipes/digits_mlp.toml] [--trials 12] [--pruner median|halving]
        [--jobs 1] [--threads 1] [--runs-dir DIR]

Searches optim.lr (log-uniform 1e-4 .. 1e-1) and model.dropout (uniform 0 .. 0.5). Prints each sweep's
steps, its best val accuracy, and the ratio of pruned to unpruned steps.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ["optim.lr=loguniform:1e-4:1e-1", "model.dropout=uniform:0:0.5"]


def steps_of(sweep_dir: Path) -> dict[str, int]:
    """Optimizer steps each trial took, read from its run directory's metrics.json."""
    from zerotune.run.files import RunDir, read_json

    runs = sorted(p for p in sweep_dir.iterdir() if RunDir(p).is_run())
    return {p.name: read_json(RunDir(p).metrics)["training"]["steps"] for p in runs}


def run(recipe: str, trials: int, prune: bool, pruner: str, jobs: int, threads: int, runs: Path):
    """One sweep; returns its summary and the steps of its trials."""
    from zerotune.tune.sweep import SweepOptions, start_sweep

    name = f"prune-{pruner}" if prune else "no-prune"
    opts = SweepOptions(recipe, PARAMS, trials, [f"train.threads={threads}"], prune=prune, pruner=pruner, name=name,
                        runs_dir=str(runs))
    summary = start_sweep(opts, jobs, out=lambda line: print("  " + line, flush=True))
    return summary, steps_of(runs / name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "digits_mlp.toml"))
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--pruner", choices=["median", "halving"], default="median")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs-dir", help="where the two sweeps go (default: a temporary directory)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(args.runs_dir or tmp)
        results = {}
        for prune in (False, True):
            print(f"sweep {'with --prune --pruner ' + args.pruner if prune else 'without pruning'}:", flush=True)
            results[prune] = run(args.recipe, args.trials, prune, args.pruner, args.jobs, args.threads, runs)
        print(f"\n{'sweep':>18}  {'trials':>6}  {'pruned':>6}  {'steps':>6}  {'best val acc':>12}")
        for prune, (summary, steps) in results.items():
            pruned = sum(r.state == "PRUNED" for r in summary.rows)
            best_acc = max((r.accuracy for r in summary.rows if r.accuracy is not None), default=float("nan"))
            label = f"--prune ({args.pruner})" if prune else "no pruning"
            print(f"{label:>18}  {len(summary.rows):>6}  {pruned:>6}  {sum(steps.values()):>6}  {100 * best_acc:>11.2f}%")
        ratio = sum(results[True][1].values()) / sum(results[False][1].values())
        print(f"steps with --prune / without: {ratio:.2f} ({'within' if ratio <= 0.6 else 'NOT within'} 0.60)")


if __name__ == "__main__":
    main()
