"""The distillation API: train a student run against a teacher run's soft targets.

A distillation is an ordinary run whose config has ``distill.teacher``; :func:`distill` only fills
that group in and calls :func:`zerotune.train`, so resume, eval, export, serve and TensorBoard work
on it as on any run.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Config, apply_overrides, build_config, load_config
from ..errors import UserError


def distill(recipe: str | Path | Config | None = None, *, teacher: str | Path | None = None,
            overrides: list[str] | None = None, callbacks: list | None = None):
    """Train the student a recipe describes against a teacher run (Hinton et al. 2015).

    Args:
        recipe: the student's recipe file, a Config, or None for the defaults.
        teacher: the teacher's run directory (overrides ``distill.teacher``).
        overrides: further ``group.field=value`` strings, e.g. ``distill.temperature=4``.
        callbacks: extra training callbacks.

    Returns:
        The TrainResult of the new run; its metrics hold a ``distill`` section (teacher, sizes,
        the teacher's own accuracy) and ``teacher_agreement`` on val and test.
    """
    from .train import train

    extra = list(overrides or [])
    if teacher is not None:
        extra.append(f"distill.teacher={json.dumps(str(teacher))}")  # quoted: a path stays a string
    if isinstance(recipe, Config):
        config = build_config(apply_overrides(recipe.to_dict(), extra))
    else:
        config = load_config(recipe, extra)
    if config.distill is None or not config.distill.teacher:
        raise UserError("distill needs a teacher: --teacher RUN_DIR (or distill.teacher in the recipe)")
    return train(config, callbacks=callbacks)
