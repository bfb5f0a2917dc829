"""The run a served model comes from, as its pages show it: the run's name and its final metrics.

Read once when the app is made (a run being served is finished); GET /metadata answers it under
``run``, None for a model served from an exported file or a Hugging Face directory.
"""

from __future__ import annotations

from numbers import Number
from pathlib import Path

from ..errors import UserError
from ..run.files import RunDir
from ..run.schema import read_metrics


def _scalars(split) -> dict:
    """A split's headline numbers (loss, accuracy, perplexity, ...), without its per-class tables."""
    if not isinstance(split, dict):
        return {}
    return {k: v for k, v in split.items() if isinstance(v, Number) and not isinstance(v, bool)}


def run_summary(source: dict) -> dict | None:
    """``{"name", "checkpoint", "steps", "val", "test"}`` of the run in a served model's ``source``.

    Args:
        source: where the served model came from (``source["run"]``: its run directory).
    """
    run = source.get("run")
    if not run:
        return None
    path = RunDir(run).metrics
    try:
        metrics = read_metrics(path) if path.is_file() else {}
    except UserError:  # a damaged metrics file hides the numbers, not the model
        metrics = {}
    training = metrics.get("training") if isinstance(metrics.get("training"), dict) else {}
    return {"name": Path(run).name, "checkpoint": source.get("checkpoint"), "steps": training.get("steps"),
            "val": _scalars(metrics.get("val")), "test": _scalars(metrics.get("test"))}
