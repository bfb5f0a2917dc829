"""Where a fine-tune starts: a zerotune run directory, or a pretrained transformers directory or alias."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class FinetuneSource:
    """A resolved fine-tuning source.

    Attributes:
        kind: "run" or "pretrained".
        path: the run directory, or the pretrained model directory.
        spec: what the user wrote (kept in the config; an alias stays an alias).
    """

    kind: str
    path: Path
    spec: str


def resolve_source(spec: str) -> FinetuneSource:
    """Decide what `spec` names: a run directory (config.yaml), a transformers directory (config.json) or an alias.

    Raises:
        UserError: when it is none of these, or a pretrained directory lacks weights or tokenizer.
    """
    from ..models.hf import ALIASES, check_tokenizer, check_weights, resolve_pretrained
    from ..run.files import RunDir

    p = Path(spec).expanduser()
    run = RunDir(p)
    if run.is_run():
        if not run.meta.exists():
            raise UserError(f"source run {p} has no {run.meta.name}; it is not a complete zerotune run")
        return FinetuneSource("run", p, spec)
    if spec.lower() in ALIASES or (p.is_dir() and (p / "config.json").is_file()):
        path = resolve_pretrained(spec)
        check_weights(path)
        check_tokenizer(path)
        return FinetuneSource("pretrained", path, spec)
    if not p.exists():
        raise UserError(f"finetune.source {spec!r} does not exist (a run directory, a transformers model "
                        f"directory or an alias: {', '.join(sorted(ALIASES))})")
    raise UserError(f"finetune.source {spec!r} is neither a zerotune run (config.yaml) nor a transformers "
                    "model directory (config.json)")
