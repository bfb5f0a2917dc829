"""Shared by the sweep tests: the recipe and the flags that make a trial take a second or two."""

from pathlib import Path

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_mlp.toml")

# A trial in a second or two: few steps, one thread, only the cheap TensorBoard views.
TINY = ["train.threads=1", "data.train_per_class=30", "log.graph=false", "log.embeddings=false", "log.figures_every=0", "log.pr_curves_every=0",
        "log.worst_every=0", "log.predictions_every=0", "log.images=false", "log.histograms_every=0",
        "log.layer_stats_every=0"]


def sets(*overrides: str) -> list[str]:
    """``--set`` flags for the command line: TINY and `overrides`."""
    return [arg for o in (*TINY, *overrides) for arg in ("--set", o)]
