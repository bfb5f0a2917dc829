"""Class imbalance on digits: does weighting the loss (or balancing the sampler) help the rare class?

    python benchmarks/class_imbalance.py [--recipe digits_mlp] [--fraction 0.05] [--minority 3] [--seeds 5] [--epochs 20] [--threads 1]

The training split keeps only `--fraction` of class `--minority` (data.class_fraction: about 6 of its
~125 examples); validation and test keep their natural balance. Three runs per seed, the same in all
else: the plain loss, `train.class_weights = "balanced"`, and `train.sampler = "balanced"`. Each seed
also draws its own split (data.split_seed), so which rare examples are kept varies too. Prints the
test macro-F1 and the minority class's test recall, mean ± std over seeds, and the gain over the
plain loss in points.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
QUIET = ["log.progress=false", "log.tensorboard=false"]
MODES = {"none": [], "balanced weights": ["train.class_weights=balanced"],
         "balanced sampler": ["train.sampler=balanced"]}


def run(recipe: Path, settings: list[str], seed: int, args, runs: Path) -> tuple[float, float]:
    """Test macro-F1 and minority recall (both in %) of one training."""
    from zerotune.config import load_config
    from zerotune.pipeline.train import train

    config = load_config(recipe, [f"data.class_fraction={{{args.minority}: {args.fraction}}}",
                                  f"data.split_seed={seed}", f"train.seed={seed}", f"train.epochs={args.epochs}",
                                  f"train.threads={args.threads}", f"log.dir={runs}", *QUIET, *settings])
    test = train(config).metrics["test"]
    minority = test["per_class"][str(args.minority)]["recall"]
    return 100 * test["f1_macro"], 100 * minority


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="digits_mlp")
    p.add_argument("--fraction", type=float, default=0.05)
    p.add_argument("--minority", type=int, default=3)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    recipe = RECIPES / f"{args.recipe}.toml"
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    print(f"{args.recipe}: class {args.minority} cut to {args.fraction:.0%} of its training examples, "
          f"{args.epochs} epochs, seeds 0..{args.seeds - 1}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for mode, settings in MODES.items():
                results[mode].append(run(recipe, settings, seed, args, Path(tmp)))
                f1, recall = results[mode][-1]
                print(f"  seed {seed}  {mode:<17} macro-F1 {f1:6.2f}  class {args.minority} recall {recall:6.2f}",
                      flush=True)
    base_f1 = statistics.mean(f for f, _ in results["none"])
    base_recall = statistics.mean(r for _, r in results["none"])
    print(f"\n{'loss / sampler':<17}  {'test macro-F1 %':>17}  {'class recall %':>17}  {'F1 gain':>8}  {'recall gain':>11}")
    for mode, pairs in results.items():
        f1s, recalls = [f for f, _ in pairs], [r for _, r in pairs]
        print(f"{mode:<17}  {_pm(f1s):>17}  {_pm(recalls):>17}  {statistics.mean(f1s) - base_f1:>+8.2f}  "
              f"{statistics.mean(recalls) - base_recall:>+11.2f}")


def _pm(values: list[float]) -> str:
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {spread:.2f}"


if __name__ == "__main__":
    main()
