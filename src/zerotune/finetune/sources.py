"""Where a fine-tune starts: a zerotune run directory, or a pretrained transformers directory, GGUF file or name."""

from __future__ import annotations

import sys
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

    def provenance(self) -> dict:
        """``{"dequantized_from": record}`` for a pretrained model made from a quantized GGUF file (said once
        on stderr, since its weights carry the quantization error), else nothing."""
        from ..models.pretrained import quantization_note, source_record

        record = source_record(self.path) if self.kind == "pretrained" else None
        note = quantization_note(record)
        if note is None:
            return {}
        print(f"note: {note}", file=sys.stderr)
        return {"dequantized_from": record}


def resolve_source(spec: str) -> FinetuneSource:
    """Decide what `spec` names: a run directory (config.yaml), a transformers directory (config.json), a GGUF
    file (dequantized once) or a pretrained model's name.

    Raises:
        UserError: when it is none of these, or a pretrained directory lacks weights or tokenizer.
    """
    from ..models.hf import check_tokenizer, check_weights, resolve_pretrained
    from ..models.pretrained import known_names, lookup
    from ..run.files import RunDir

    p = Path(spec).expanduser()
    run = RunDir(p)
    if run.is_run():
        if not run.meta.exists():
            raise UserError(f"source run {p} has no {run.meta.name}; it is not a complete zerotune run")
        return FinetuneSource("run", p, spec)
    if lookup(spec) is not None or (p.is_dir() and (p / "config.json").is_file()) or (
            p.is_file() and p.suffix.lower() == ".gguf"):
        path = resolve_pretrained(spec)
        check_weights(path)
        check_tokenizer(path)
        return FinetuneSource("pretrained", path, spec)
    if not p.exists():
        raise UserError(f"finetune.source {spec!r} does not exist (a run directory, a transformers model "
                        f"directory, a .gguf file or a pretrained model's name: {', '.join(known_names())})")
    raise UserError(f"finetune.source {spec!r} is neither a zerotune run (config.yaml) nor a transformers "
                    "model directory (config.json)")
