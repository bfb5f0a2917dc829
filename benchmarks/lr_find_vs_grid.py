"""The learning-rate range test against a grid: does training at the suggested rate get within 0.5
points of test accuracy of the best of 7 log-spaced rates (1e-4 .. 1e-1, half a decade apart), on the
same epoch budget?

    python benchmarks/lr_find_vs_grid.py [--recipes digits_mlp digits_cnn] [--epochs 10] [--seeds 10] [--threads 1]

Each recipe: `zerotune lr-find` with its defaults (1e-7 .. 10, 100 steps), then one training per grid
rate and one at the suggestion, all with the recipe's optimizer and schedule, each repeated with seeds
0..N-1: the test split has a few hundred samples, so one seed moves accuracy by a point or more.
Prints the mean test accuracy per rate and, per recipe, the gap in points between the best grid rate
and the suggestion.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GRID = [10 ** (-4 + k / 2) for k in range(7)]  # 1e-4, 3.2e-4, ..., 1e-1
QUIET = ["log.progress=false", "log.graph=false", "log.embeddings=false"]


def mean_accuracy(recipe: Path, lr: float, epochs: int, seeds: int, threads: int, runs: Path) -> float:
    """Mean test accuracy (%) over seeds 0..seeds-1."""
    from zerotune.config import load_config
    from zerotune.pipeline.train import train

    total = 0.0
    for seed in range(seeds):
        config = load_config(recipe, [f"optim.lr={lr}", f"train.epochs={epochs}", f"train.seed={seed}",
                                      f"train.threads={threads}", f"log.dir={runs}", *QUIET])
        total += 100 * train(config).metrics["test"]["accuracy"]
    return total / seeds


def compare(name: str, epochs: int, seeds: int, threads: int, runs: Path) -> float:
    """Print the table of one recipe; return the gap (best grid accuracy - suggested accuracy) in points."""
    from zerotune.config import load_config
    from zerotune.tune.lr_find import lr_find

    recipe = RECIPES / f"{name}.toml"
    found = lr_find(load_config(recipe, [f"train.threads={threads}"]), runs_dir=runs)
    print(f"\n{name}: suggested lr {found.suggestion:.3g} (loss minimum at {found.min_loss_lr:.3g}), "
          f"{epochs} epochs, mean of {seeds} seeds")
    print(f"{'lr':>10}  {'test acc %':>10}")
    grid = {}
    for lr in GRID:
        grid[lr] = mean_accuracy(recipe, lr, epochs, seeds, threads, runs)
        print(f"{lr:>10.3g}  {grid[lr]:>10.2f}", flush=True)
    suggested = mean_accuracy(recipe, found.suggestion, epochs, seeds, threads, runs)
    print(f"{found.suggestion:>10.3g}  {suggested:>10.2f}  <- suggested")
    gap = max(grid.values()) - suggested
    print(f"best grid {max(grid.values()):.2f}, suggested {suggested:.2f}: gap {gap:+.2f} points "
          f"({'within' if gap <= 0.5 else 'NOT within'} 0.5)")
    return gap


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=["digits_mlp", "digits_cnn"], help="recipe names in recipes/")
    p.add_argument("--epochs", type=int, default=10, help="epoch budget of every training")
    p.add_argument("--seeds", type=int, default=10, help="seeds each rate is trained with (mean reported)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        for name in args.recipes:
            compare(name, args.epochs, args.seeds, args.threads, Path(runs))


if __name__ == "__main__":
    main()
