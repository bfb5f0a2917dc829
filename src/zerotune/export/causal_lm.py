"""ONNX export of a Hugging Face causal language model (logits), LoRA adapters merged, parity checked.

The graph is the full-sequence forward without a KV cache: ``input_ids`` int64 [batch, sequence]
in, ``logits`` float32 [batch, sequence, vocab] out, both axes free (sequence up to the model's
``max_position_embeddings``), as the export of a zerotune GPT run (`LMSignature`). A peft model is
merged into plain linear layers first (``merge_and_unload``), so the file holds a plain model.
Parity is checked as for the other run kinds: onnxruntime against PyTorch on random token ids,
max |diff| of the logits within ``tolerance`` (and the same next token at every position reported).

Runs: a zerotune GPT run (LoRA included, instruction-tuned or not) exports through `export_run`
like any run. A run that holds a Hugging Face causal LM (``hf_lm``) goes through `build_causal_lm`:
`export_causal_lm` on its transformers model with a few of its own token rows as ``ids``, and
`export_run` writes the sidecar as for any run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import UserError
from ..run.atomic import atomic_write_bytes
from .onnx_export import DEFAULT_OPSET, to_onnx
from .parity import Parity, verify
from .runtime import onnx_runner, torch_runner
from .signature import LMSignature


class CausalLMLogits(nn.Module):
    """``input_ids`` (B, T) -> logits (B, T, V) of a transformers causal LM, every position real, no cache."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, use_cache=False).logits.float()


@dataclass
class CausalLMExport:
    """An exported causal LM: the ONNX bytes, its input signature and the parity check it passed."""

    onnx: bytes
    signature: LMSignature
    parity: Parity
    merged_adapters: bool


def merged(model: nn.Module) -> tuple[nn.Module, bool]:
    """A plain copy of ``model`` (float32, CPU, eval): LoRA adapters of a peft model merged in."""
    model = copy.deepcopy(model)
    has_adapters = hasattr(model, "merge_and_unload")
    if has_adapters:
        model = model.merge_and_unload()
    return model.float().cpu().eval(), has_adapters


def export_causal_lm(model: nn.Module, example_ids: torch.Tensor, *, opset: int = DEFAULT_OPSET,
                     tolerance: float = 1e-4, checks: int = 8, out: str | Path | None = None) -> CausalLMExport:
    """Export a causal LM's logits to ONNX and check them against PyTorch with onnxruntime.

    Args:
        model: a transformers causal LM (``AutoModelForCausalLM``), or a peft model around one
            (its adapters are merged into a copy; ``model`` is left untouched).
        example_ids: token ids (B, T), T >= 2, for tracing; the batch and sequence axes stay free.
        opset: the ONNX opset.
        tolerance: bound on the max absolute logit difference.
        checks: random token sequences (a little longer than the example) for the parity check.
        out: where to write the .onnx file (default: nowhere; the bytes are returned).

    Raises:
        UserError: the export fails, or its logits differ from PyTorch's by more than ``tolerance``.
    """
    plain, has_adapters = merged(model)
    cfg = plain.config
    context = int(getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions"))
    signature = LMSignature(context, int(cfg.vocab_size))
    ids = np.asarray(example_ids, dtype=np.int64)
    if ids.ndim != 2 or ids.shape[1] < 2:
        raise UserError(f"example_ids must be token ids (batch, sequence >= 2), got shape {ids.shape}")
    wrapped = CausalLMLogits(plain).eval()
    data = to_onnx(wrapped, signature.example(ids), opset)
    length = min(context, ids.shape[1] + 5)  # not the traced length: a sequence axis fixed by mistake shows
    x = np.random.default_rng(0).integers(0, signature.vocab_size, size=(checks, length), dtype=np.int64)
    parity = verify(torch_runner(wrapped, signature), onnx_runner(data, signature=signature), x,
                    reference_name="pytorch fp32", inputs="random token", classification=True, tolerance=tolerance)
    if not parity.ok:
        raise UserError(f"the ONNX export does not match PyTorch: {parity.summary()}")
    if out is not None:
        atomic_write_bytes(out, data)
    return CausalLMExport(data, signature, parity, has_adapters)


def build_causal_lm(model: nn.Module, example_ids: np.ndarray, options, tolerance: float):
    """`export_causal_lm` as a `build.Built` for `export_run`: plain ONNX only (float32).

    Args:
        model: the transformers causal LM, or a peft model around one.
        example_ids: a few token rows of the run (its test split), for tracing.
        options: the run's `ExportOptions`.
        tolerance: bound on the max absolute logit difference.

    Returns:
        (the `Built` export, its `LMSignature`).
    """
    from .build import Built

    if options.format != "onnx" or options.int8 or options.prune:
        raise UserError(f"a transformers causal language model exports as plain ONNX only, not {options.label}; "
                        "drop --format, --int8 and --prune")
    result = export_causal_lm(model, torch.as_tensor(np.asarray(example_ids)[:4]).long(), opset=options.opset,
                              tolerance=tolerance)
    info = {"format": "onnx", "opset": options.opset, "dynamic_batch": True,
            "dynamic_axes": result.signature.dynamic_axes(), "int8": None, "quantizer": None, "prune": None,
            "amount": None, "finetune_epochs": None, "sparsity": None, "merged_adapters": result.merged_adapters}
    runner = onnx_runner(result.onnx, signature=result.signature)
    return Built(options, result.onnx, runner, [result.parity], info), result.signature
