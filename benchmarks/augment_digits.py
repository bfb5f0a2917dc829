"""Augmentation on the digits CNN: test accuracy without augmentation, with the recipe's rotation and
shift, and with zoom / brightness / contrast jitter, mixup or cutmix added, each also under
test-time augmentation.

    python benchmarks/augment_digits.py [--epochs 40] [--seeds 1] [--train-per-class 0 20] [--threads 1]

Every run is `recipes/digits_cnn.toml` (CNN 32-64-64, AdamW, cosine, 40 epochs) with only
`data.augment` changed. `--train-per-class 20` repeats the comparison with 20 training images per
class (200 in all), where augmentation has more to add than on the full 1,293. Prints one row per
variant: mean test accuracy and loss of the best checkpoint, the accuracy with `eval --tta`, and
the training time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits_cnn.toml"
QUIET = ["log.progress=false", "log.graph=false", "log.embeddings=false", "log.tensorboard=false"]
OFF = ["data.augment.rotate_degrees=0", "data.augment.shift=0"]
VARIANTS = {
    "none": OFF,
    "recipe (rotate 10, shift 0.1)": [],
    "+ scale 0.1, brightness 0.2, contrast 0.2": ["data.augment.scale=0.1", "data.augment.brightness=0.2",
                                                 "data.augment.contrast=0.2"],
    "+ mixup 0.2": ["data.augment.mixup_alpha=0.2"],
    "+ cutmix 1.0": ["data.augment.cutmix_alpha=1.0"],
}


def run_variant(extra: list[str], per_class: int, epochs: int, seeds: int, threads: int, runs: Path) -> dict:
    """Mean test accuracy, loss, TTA accuracy (None without views) and seconds over seeds 0..seeds-1."""
    from zerotune.config import load_config
    from zerotune.errors import UserError
    from zerotune.pipeline.train import evaluate, train

    rows = []
    for seed in range(seeds):
        sets = [*extra, f"train.epochs={epochs}", f"train.seed={seed}", f"train.threads={threads}",
                f"log.dir={runs}", *QUIET] + ([f"data.train_per_class={per_class}"] if per_class else [])
        start = time.perf_counter()
        result = train(load_config(RECIPE, sets))
        seconds = time.perf_counter() - start
        try:
            tta = evaluate(result.run_dir, tta=True)["tta"]["accuracy"]
        except UserError:  # no augmentation: no views
            tta = None
        test = result.metrics["test"]
        rows.append((test["accuracy"], test["loss"], tta, seconds))
    tta = [r[2] for r in rows if r[2] is not None]
    return {"accuracy": statistics.mean(r[0] for r in rows), "loss": statistics.mean(r[1] for r in rows),
            "tta": statistics.mean(tta) if tta else None, "seconds": statistics.mean(r[3] for r in rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--train-per-class", type=int, nargs="+", default=[0, 20],
                   help="training images per class (0: all)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        for per_class in args.train_per_class:
            size = "all training images" if not per_class else f"{per_class} training images per class"
            print(f"\ndigits CNN, {size}, {args.epochs} epochs, mean of {args.seeds} seed(s)")
            print(f"| {'augmentation':<42} | test acc % | test loss | with --tta % | seconds |")
            print(f"|{'-' * 44}|-----------:|----------:|-------------:|--------:|")
            for name, extra in VARIANTS.items():
                r = run_variant(extra, per_class, args.epochs, args.seeds, args.threads, Path(runs))
                tta = "n/a" if r["tta"] is None else f"{100 * r['tta']:.2f}"
                print(f"| {name:<42} | {100 * r['accuracy']:>10.2f} | {r['loss']:>9.4f} | {tta:>12} | "
                      f"{r['seconds']:>7.1f} |", flush=True)


if __name__ == "__main__":
    main()
