"""`zerotune export RUN --format hf`: a tuned transformers causal LM as a standard Hugging Face directory.

The directory is what ``AutoModelForCausalLM.from_pretrained(dir)`` and
``AutoTokenizer.from_pretrained(dir)`` read with nothing of zerotune installed: ``config.json``,
``model.safetensors`` (LoRA adapters merged into plain weights), the tokenizer with its chat
template, and ``generation_config.json`` whose ``eos_token_id`` holds the run's end-of-answer token,
so that transformers' ``generate`` stops where zerotune's answers do. Before the directory is moved
into place, transformers reads it back and its logits are checked against the run's model.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..run.files import RunDir
from ..run.lock import run_lock_if_inside
from ..runload.load import chat_format_for, load_run, model_dir
from .causal_lm import merged


@dataclass
class HFExport:
    path: Path
    bytes: int
    max_diff: float
    merged_adapters: bool
    stop_ids: list[int]


def export_hf(run_dir: str | Path, out: str | Path | None = None, *, force: bool = False, checkpoint: str = "best",
              tolerance: float = 1e-4) -> HFExport:
    """Write a run's transformers causal LM as a Hugging Face directory, checked against the run's model.

    Args:
        run_dir: an instruction-tuned run of a transformers causal LM (``model.name = "hf_lm"``).
        out: the directory to write (default: ``RUN/export/hf``).
        force: replace an existing directory (only once the new one is complete and checked).
        checkpoint: "best" or "last".
        tolerance: bound on the max absolute logit difference after reading the directory back.

    Raises:
        UserError: a run of another model, a directory that exists without ``force``, or logits
            that differ by more than ``tolerance`` (then nothing is written).
    """
    target = Path(out) if out is not None else RunDir(run_dir).export / "hf"
    if target.exists() and not force:
        raise UserError(f"{target} already exists; pass --force to replace it")
    with run_lock_if_inside(target, run_dir):
        lm = tuned_causal_lm(run_dir, checkpoint, "hf")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
            written = Path(tmp) / "hf"
            save_hf_dir(lm, written)
            diff = _check_read_back(lm.model, written, tolerance)
            if target.exists():
                shutil.rmtree(target)
            written.rename(target)
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    return HFExport(target, size, diff, lm.merged_adapters, lm.stop_ids)


@dataclass
class TunedLM:
    """A run's transformers causal LM ready to leave zerotune: plain weights (LoRA merged, float32, eval),
    the directory of its tokenizer files, its chat format (tokenizer loaded once), and the ids generation
    stops at (the end of an answer first when the model has no own end-of-sequence id)."""

    run: object  # the LoadedRun
    model: object
    tokenizer_dir: Path
    chat: object  # data.chat.ChatFormat
    stop_ids: list[int]
    merged_adapters: bool

    @property
    def tokenizer(self):
        return self.chat.tokenizer

    @property
    def answer_end(self) -> int | None:
        return self.chat.stop_id


def tuned_causal_lm(run_dir: str | Path, checkpoint: str, fmt: str) -> TunedLM:
    """The run's causal LM for `--format fmt`, or a UserError naming which runs that format takes."""
    run = load_run(run_dir, checkpoint)
    hf = getattr(run.model, "hf_model", None)
    if hf is None:
        raise UserError(f"--format {fmt} writes a transformers causal LM (an instruction, preference or fine-tune run "
                        f"of model hf_lm); {run_dir} holds a {run.config.model.name!r} model (export it with "
                        "--format onnx or torchscript)")
    plain, had_adapters = merged(hf)
    chat = chat_format_for(run.config, run.path)[0]
    return TunedLM(run, plain, model_dir(run.config, run.path), chat, _stop_ids(plain, chat.stop_id), had_adapters)


def _stop_ids(model, answer_end: int | None) -> list[int]:
    """The model's own end-of-sequence ids and the chat format's end-of-answer token, in that order."""
    own = model.generation_config.eos_token_id if model.generation_config is not None else None
    own = own if isinstance(own, list) else [own] if own is not None else []
    return list(dict.fromkeys([*own, *([answer_end] if answer_end is not None else [])]))


def save_hf_dir(lm: TunedLM, out: Path) -> None:
    """Write `lm` as a Hugging Face directory: weights, config, tokenizer, generation config."""
    model, stop_ids, tokenizer = lm.model, lm.stop_ids, lm.tokenizer
    model.generation_config.eos_token_id = stop_ids[0] if len(stop_ids) == 1 else stop_ids
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


@torch.inference_mode()
def _check_read_back(model, directory: Path, tolerance: float) -> float:
    """Max |logit difference| between the model and what transformers reads from `directory`."""
    from transformers import AutoModelForCausalLM

    again = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (2, 24), generator=torch.Generator().manual_seed(0))
    diff = float((model(input_ids=ids).logits - again(input_ids=ids).logits).abs().max())
    if not diff <= tolerance:
        raise UserError(f"the Hugging Face directory's logits differ from the run's model by {diff:.3g} "
                        f"(bound {tolerance:g}); nothing was written")
    return diff
