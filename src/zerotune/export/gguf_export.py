"""`zerotune export RUN --format gguf [--quant f16|q8_0]`: a tuned causal LM as one GGUF file for llama.cpp and others.

The run's model is taken as `--format hf` takes it (LoRA merged, `hf_dir.tuned_causal_lm`) and
written by `gguf_writer` to a temporary name beside the target. Before it is renamed into place,
an independent reader, transformers' GGUF loader, reads model and tokenizer back from the file:
the tokenizer must format and encode every check prompt exactly as the run's does, and the model's
greedy answers must equal the run's on all of them in float16 and on `MIN_AGREEMENT` of them in
Q8_0. The prompts are the run's held-out records, topped up with fixed questions (`lm_prompts`).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..run.files import RunDir, outermost_missing, removed_on_failure
from ..run.lock import run_lock_if_inside
from .gguf_writer import check_architecture, check_quant, write_gguf
from .hf_dir import TunedLM, tuned_causal_lm
from .lm_answers import Agreement, Answers, agreement, greedy_answers

MIN_AGREEMENT = {"f16": 1.0, "q8_0": 0.95}  # q8_0: 19 of 20; its rounding may flip a near tie


@dataclass
class GGUFExport:
    path: Path
    bytes: int
    quant: str
    agreement: Agreement
    write_seconds: float
    merged_adapters: bool
    stop_ids: list[int]


def export_gguf(run_dir: str | Path, quant: str = "f16", out: str | Path | None = None, *, force: bool = False,
                checkpoint: str = "best", prompts: list[str] | None = None,
                min_agreement: float | None = None) -> GGUFExport:
    """Write a run's transformers causal LM as a GGUF file, checked by reading it back with transformers.

    Args:
        run_dir: a run of a Llama or Qwen2 transformers causal LM (``model.name = "hf_lm"``).
        quant: "f16" or "q8_0".
        out: the file (``.gguf``) or directory to write (default: ``RUN/export/model-<quant>.gguf``).
        force: replace an existing file (only once the new one is complete and checked).
        checkpoint: "best" or "last".
        prompts: user prompts to check answers on (default: the run's held-out records, then fixed questions).
        min_agreement: the fraction of greedy answers that must equal PyTorch's (default: `MIN_AGREEMENT`).

    Raises:
        UserError: a run of another model or architecture, an unknown quantization, a file that exists
            without ``force``, or a read-back that misses its bounds (then nothing is written).
    """
    check_quant(quant)
    bound = MIN_AGREEMENT[quant] if min_agreement is None else min_agreement
    if not 0 <= bound <= 1:
        raise UserError(f"min agreement must be between 0 and 1, got {bound}")
    target = _target(Path(run_dir), quant, out)
    if target.exists() and not force:
        raise UserError(f"{target} already exists; pass --force to replace it")
    with run_lock_if_inside(target, run_dir):
        lm = tuned_causal_lm(run_dir, checkpoint, "gguf")
        check_architecture(lm.model.config)
        with removed_on_failure(outermost_missing(target.parent)):
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
                written = Path(tmp) / target.name
                seconds, agreed = _write_and_check(lm, written, quant, prompts, bound)
                os.replace(written, target)
    return GGUFExport(target, target.stat().st_size, quant, agreed, seconds, lm.merged_adapters, lm.stop_ids)


def _target(run_dir: Path, quant: str, out: str | Path | None) -> Path:
    name = f"model-{quant}.gguf"
    if out is None:
        return RunDir(run_dir).export / name
    as_dir = str(out).endswith(("/", "\\"))
    out = Path(out)
    if as_dir or out.is_dir():
        return out / name
    if out.suffix != ".gguf":
        raise UserError(f"--out {out}: GGUF files must end in .gguf")
    return out


def _write_and_check(lm: TunedLM, path: Path, quant: str, prompts: list[str] | None,
                     bound: float) -> tuple[float, Agreement]:
    """(seconds the writing took, the read-back's agreement); UserError when the file misses its bounds."""
    from .lm_prompts import answer_tokens, check_conversations

    t0 = time.perf_counter()
    write_file(lm, path, quant)
    seconds = time.perf_counter() - t0
    if prompts is not None:
        conversations, held = [[{"role": "user", "content": p}] for p in prompts], len(prompts)
    else:
        conversations, held = check_conversations(lm.run.config)
    ids = prompt_ids(lm, conversations)
    reference = greedy_answers(lm.model, ids, lm.stop_ids, answer_tokens(lm.run.config))
    agreed = file_answers(lm, path, conversations, ids, reference, held)[0]
    if agreed.fraction < bound:
        raise UserError(f"the GGUF file ({quant}) read back by transformers gives {agreed.summary()}; at least "
                        f"{bound:.0%} must be (--min-agreement); nothing was written")
    return seconds, agreed


def write_file(lm: TunedLM, path: Path, quant: str) -> None:
    """`write_gguf` of a tuned LM with its tokenizer and the chat template its prompts are formatted with."""
    from ..data.chat import default_template_jinja

    template = getattr(lm.tokenizer, "chat_template", None) or default_template_jinja()
    write_gguf(path, lm.model, lm.tokenizer, lm.tokenizer_dir, quant, lm.answer_end, template, lm.run.path.name)


def prompt_ids(lm: TunedLM, conversations: list[list[dict]]) -> list[list[int]]:
    return [lm.chat.prompt_ids(c) for c in conversations]


def file_answers(lm: TunedLM, path: Path, conversations, ids, reference: Answers,
                 held: int) -> tuple[Agreement, Answers]:
    """Read `path` back with transformers: the same prompt ids (else a UserError), and its greedy answers."""
    from ..data.chat import ChatFormat

    model, tokenizer = read_back(path)
    theirs = [ChatFormat(tokenizer).prompt_ids(c) for c in conversations]
    if theirs != ids:
        first = next(i for i, (a, b) in enumerate(zip(theirs, ids)) if a != b)
        raise UserError(f"the GGUF file's tokenizer encodes check prompt {first + 1} differently from the run's "
                        f"({len(theirs[first])} vs {len(ids[first])} tokens); nothing was written")
    answers = greedy_answers(model, ids, lm.stop_ids, max(len(a) for a in reference.ids))
    return agreement(reference, answers, held), answers


def read_back(path: Path):
    """(model, tokenizer) as transformers' GGUF loader reads them from the file alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models.gguf_source import quiet_gguf_reader

    where = {"pretrained_model_name_or_path": str(path.parent), "gguf_file": path.name, "local_files_only": True}
    with quiet_gguf_reader():
        tokenizer = AutoTokenizer.from_pretrained(**where)
        model = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32).eval()
    return model, tokenizer
