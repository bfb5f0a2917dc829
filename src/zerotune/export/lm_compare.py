"""`export --compare` for a run of a transformers causal LM: the PyTorch model, its Hugging Face directory and
its GGUF files side by side (size, greedy tokens per second, answers the same as PyTorch's).

Every variant is written to a temporary directory, read back by transformers and asked the same
check prompts as `--format gguf` asks (`lm_prompts`); nothing is left in the run. A GGUF file runs
here as transformers reads it, dequantized to float32, so its speed is transformers', not llama.cpp's;
where llama-cpp-python is installed (the ``llamacpp`` extra), llama.cpp runs the same files too, in rows
of their own at the end.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..compute.threads import torch_threads
from ..errors import UserError
from .gguf_export import MIN_AGREEMENT, file_answers, prompt_ids, write_file
from .hf_dir import TunedLM, save_hf_dir, tuned_causal_lm
from .llamacpp_answers import llamacpp_answers, llamacpp_installed
from .lm_answers import Answers, agreement, greedy_answers
from .lm_prompts import answer_tokens, check_conversations


@dataclass
class LMRow:
    variant: str
    bytes: int | None = None
    tokens_per_s: float | None = None
    same: int | None = None  # greedy answers equal to PyTorch's
    total: int | None = None
    note: str = ""


@dataclass
class LMComparison:
    run: str
    threads: int
    held_out: int
    rows: list[LMRow]

    def to_dict(self) -> dict:
        return {"run": self.run, "threads": self.threads, "held_out": self.held_out,
                "rows": [asdict(r) for r in self.rows]}


def compare_causal_lm(run_dir: str | Path, *, threads: int | None = None, checkpoint: str = "best") -> LMComparison:
    """Measure a causal LM run's PyTorch model, `--format hf` directory and GGUF f16 and q8_0 files.

    Raises:
        UserError: a run that holds no transformers causal LM.
    """
    use_threads = torch_threads(threads)
    lm = tuned_causal_lm(run_dir, checkpoint, "gguf")
    conversations, held = check_conversations(lm.run.config)
    ids = prompt_ids(lm, conversations)
    with use_threads, tempfile.TemporaryDirectory(prefix="zerotune-compare-") as tmp:
        import torch

        reference = greedy_answers(lm.model, ids, lm.stop_ids, answer_tokens(lm.run.config))
        rows = [LMRow("pytorch fp32 (eager)", _param_bytes(lm.model), reference.tokens_per_s, len(ids), len(ids))]
        rows.append(_hf_row(lm, Path(tmp) / "hf", ids, reference, held))
        files = {quant: Path(tmp) / f"model-{quant}.gguf" for quant in ("f16", "q8_0")}
        for quant, path in files.items():
            rows.append(_gguf_row(lm, path, quant, conversations, ids, reference, held))
        if llamacpp_installed():
            rows += [_llamacpp_row(lm, path, quant, ids, reference, held) for quant, path in files.items()
                     if path.exists()]
        return LMComparison(str(run_dir), torch.get_num_threads(), held, rows)


def _param_bytes(model) -> int:
    """Bytes of the model's distinct tensors (a tied embedding counted once)."""
    seen = {t.untyped_storage().data_ptr(): t.numel() * t.element_size() for t in model.state_dict().values()}
    return sum(seen.values())


def _hf_row(lm: TunedLM, directory: Path, ids, reference: Answers, held: int) -> LMRow:
    from transformers import AutoModelForCausalLM

    save_hf_dir(lm, directory)
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True).eval()
    answers = greedy_answers(model, ids, lm.stop_ids, max(len(a) for a in reference.ids))
    agreed = agreement(reference, answers, held)
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    return LMRow("hf directory (float32)", size, answers.tokens_per_s, agreed.same, agreed.total)


def _gguf_row(lm: TunedLM, path: Path, quant: str, conversations, ids, reference: Answers, held: int) -> LMRow:
    row = LMRow(f"gguf {quant}", note="run by transformers (dequantized to float32)")
    try:
        write_file(lm, path, quant)
        row.bytes = path.stat().st_size
        agreed, answers = file_answers(lm, path, conversations, ids, reference, held)
    except UserError as e:
        row.note = str(e)
        return row
    row.tokens_per_s, row.same, row.total = answers.tokens_per_s, agreed.same, agreed.total
    if agreed.fraction < MIN_AGREEMENT[quant]:
        row.note = f"below the {MIN_AGREEMENT[quant]:.0%} of answers `--format gguf` requires: it would not be written"
    return row


def _llamacpp_row(lm: TunedLM, path: Path, quant: str, ids, reference: Answers, held: int) -> LMRow:
    import torch

    answers = llamacpp_answers(path, ids, lm.stop_ids, max(len(a) for a in reference.ids), torch.get_num_threads())
    agreed = agreement(reference, answers, held)
    return LMRow(f"llama.cpp gguf {quant}", path.stat().st_size, answers.tokens_per_s, agreed.same, agreed.total,
                 "run by llama.cpp (llama-cpp-python)")


def print_lm_comparison(c: LMComparison) -> None:
    """Print the comparison as one table."""
    from rich.table import Table

    from ..terminal.console import console

    base = c.rows[0]
    table = Table(title=f"{c.run}: causal LM exports, {c.threads} thread(s), greedy answers to "
                        f"{base.total} prompts ({c.held_out} held-out records)", title_justify="left")
    for col in ("variant", "MB", "vs eager", "tokens/s", "same answers", "note"):
        table.add_column(col, justify="left" if col in ("variant", "note") else "right", no_wrap=col != "note")
    for r in c.rows:
        table.add_row(r.variant, "" if r.bytes is None else f"{r.bytes / 1e6:.1f}",
                      f"{r.bytes / base.bytes:.2f}x" if r.bytes and base.bytes else "",
                      "" if r.tokens_per_s is None else f"{r.tokens_per_s:.1f}",
                      "" if r.same is None else f"{r.same}/{r.total}", r.note)
    console(min_width=110).print(table)
