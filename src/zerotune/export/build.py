"""From a loaded run and a set of export options to verified model bytes, in memory.

Nothing here touches the disk outside temporary directories: `api.export_run` writes the result,
`compare.compare_run` only measures it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.bundle import DataBundle
from ..errors import UserError
from ..runload.load import LoadedRun
from ..tasks.supervised import Task
from . import prune as pruning
from .inputs import calibration_batches, example_batch, parity_inputs
from .onnx_export import DEFAULT_OPSET, check_opset, to_onnx
from .parity import Parity, verify
from .prepare import prepare_for_export
from .quantize import (INT8_MODES, onnx_dynamic_int8, onnx_static_int8, static_int8_scheme, torch_dynamic_int8,
                       torch_static_int8)
from .runtime import Runner, graph_runner, load_torchscript, onnx_runner, torch_runner
from .signature import ExampleInputs, Signature, signature_for
from .tflite_export import TFLITE_BATCH, check_tflite, tflite_runner, to_tflite
from .torchscript import to_torchscript

EXPORT_FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "tflite": ".tflite"}
# Formats of a run's transformers causal LM alone, written by their own modules (export/hf_dir.py, export/gguf_export.py).
CAUSAL_LM_FORMATS = ("hf", "gguf")
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MIN_AGREEMENT = 0.97
# Int8 regression outputs cannot be compared by class; bound them in standardised target units.
REGRESSION_INT8_TOLERANCE = 0.1


@dataclass(frozen=True)
class ExportOptions:
    """What to export.

    Attributes:
        format: "onnx" (quantized with onnxruntime), "torchscript" (quantized with PyTorch) or
            "tflite" (float only, batches of one; needs the ``tflite`` extra).
        opset: ONNX opset of the default domain (ONNX only).
        int8: None, "dynamic" (Linear weights) or "static" (weights and activations, calibrated).
        prune: None, "global" (unstructured) or "channel" (structured by output channel).
        amount: fraction pruned.
        finetune_epochs: epochs of training after pruning, with the masks in force.
        finetune_lr: Adam learning rate of that fine-tuning.
    """

    format: str = "onnx"
    opset: int = DEFAULT_OPSET
    int8: str | None = None
    prune: str | None = None
    amount: float = 0.5
    finetune_epochs: int = 0
    finetune_lr: float = 1e-4

    def validate(self) -> "ExportOptions":
        if self.format not in EXPORT_FORMATS:
            raise UserError(f"export format {self.format!r} is unknown; allowed: {', '.join(EXPORT_FORMATS)}")
        if self.format == "onnx":
            check_opset(self.opset)
        if self.format == "tflite" and self.int8 is not None:
            raise UserError("--int8 applies to onnx and torchscript; TFLite export is float32 only")
        if self.int8 is not None and self.int8 not in INT8_MODES:
            raise UserError(f"int8 mode {self.int8!r} is unknown; allowed: {', '.join(INT8_MODES)}")
        if self.prune is not None:
            if self.prune not in pruning.PRUNE_METHODS:
                raise UserError(f"prune method {self.prune!r} is unknown; allowed: {', '.join(pruning.PRUNE_METHODS)}")
            pruning.check_amount(self.amount)
        if self.finetune_epochs < 0:
            raise UserError(f"finetune epochs must be 0 or more, got {self.finetune_epochs}")
        if self.finetune_epochs and self.prune is None:
            raise UserError("fine-tuning applies after pruning; add --prune global or --prune channel")
        if not self.finetune_lr > 0:
            raise UserError(f"finetune learning rate must be positive, got {self.finetune_lr}")
        return self

    @property
    def quantizer(self) -> str | None:
        if self.int8 is None:
            return None
        return "onnxruntime" if self.format == "onnx" else "pytorch"

    @property
    def label(self) -> str:
        """A short name such as ``onnx int8-static`` or ``onnx pruned-channel-30%+ft2``."""
        parts = [self.format]
        if self.prune:
            ft = f"+ft{self.finetune_epochs}" if self.finetune_epochs else ""
            parts.append(f"pruned-{self.prune}-{self.amount:.0%}{ft}")
        if self.int8:
            parts.append(f"int8-{self.int8}")
        return " ".join(parts)

    def file_name(self) -> str:
        """The default file name, e.g. ``model.onnx`` or ``model-pruned-global50-int8-dynamic.onnx``."""
        stem = "model"
        if self.prune:
            ft = f"-ft{self.finetune_epochs}" if self.finetune_epochs else ""
            stem += f"-pruned-{self.prune}{round(self.amount * 100)}{ft}"
        if self.int8:
            stem += f"-int8-{self.int8}"
        return re.sub(r"[^A-Za-z0-9._-]", "", stem) + EXPORT_FORMATS[self.format]


@dataclass
class Built:
    """An exported model held in memory, with its verification."""

    options: ExportOptions
    data: bytes
    runner: Runner
    parity: list[Parity]
    info: dict  # how it was made, for the sidecar


@dataclass
class Bounds:
    """Parity bounds: exact exports must match within ``tolerance``; int8 ones by class agreement."""

    tolerance: float = DEFAULT_TOLERANCE
    min_agreement: float = DEFAULT_MIN_AGREEMENT

    def __post_init__(self):
        if not self.tolerance > 0:
            raise UserError(f"tolerance must be positive, got {self.tolerance}")
        if not 0 <= self.min_agreement <= 1:
            raise UserError(f"min agreement must be between 0 and 1, got {self.min_agreement}")


@dataclass
class ExportContext:
    """What every variant of one run shares, computed once: data, inputs, the prepared model.

    ``model`` takes native batches (``example``, ``x``: what the run's data holds); the exported
    graphs take ``signature``'s named inputs, for which ``export_inputs`` is the example.
    """

    run: LoadedRun
    data: DataBundle | None
    example: torch.Tensor
    x: np.ndarray
    inputs: str
    model: nn.Module
    signature: Signature
    export_inputs: ExampleInputs
    float_cache: dict = field(default_factory=dict)  # prune spec -> (pruned model, sparsity)
    onnx_cache: dict = field(default_factory=dict)  # (prune spec, opset) -> fp32 ONNX bytes

    @classmethod
    def create(cls, run: LoadedRun, data: DataBundle | None) -> "ExportContext":
        signature = signature_for(run.meta, run.model, run.config.data.max_length)
        example = example_batch(run, data, signature)
        x, inputs = parity_inputs(run, data, signature)
        model = prepare_for_export(run.model, example)
        return cls(run, data, example, x, inputs, model, signature, signature.example(x))

    @property
    def classification(self) -> bool:
        return self.run.meta.task == "classification"

    @property
    def by_class(self) -> bool:
        """Whether outputs are logits over classes (or tokens), so int8 exports are bounded by agreement."""
        return self.run.meta.task in ("classification", "lm")


def float_model(ctx: ExportContext, options: ExportOptions) -> tuple[nn.Module, float | None]:
    """The float model to export: the prepared model, pruned (and fine-tuned) if asked.

    Pruned models are cached per pruning spec, so every variant built on one (float and int8)
    starts from the very same weights.
    """
    if options.prune is None:
        return ctx.model, None
    key = (options.prune, options.amount, options.finetune_epochs, options.finetune_lr)
    if key not in ctx.float_cache:
        ctx.float_cache[key] = _pruned(ctx, options)
    return ctx.float_cache[key]


def _pruned(ctx: ExportContext, options: ExportOptions) -> tuple[nn.Module, float]:
    model = pruning.prune_model(ctx.model, options.prune, options.amount)
    if options.finetune_epochs:
        if ctx.data is None or len(ctx.data.train) == 0:
            raise UserError("fine-tuning after pruning needs the run's training data, which cannot be rebuilt")
        cfg = ctx.run.config.train
        task = Task(ctx.run.meta, cfg.loss, cfg.label_smoothing)
        pruning.finetune(model, ctx.data.train, task.loss, epochs=options.finetune_epochs, lr=options.finetune_lr,
                         batch_size=cfg.batch_size, seed=cfg.seed)
    model = pruning.make_permanent(model).eval()
    return model, pruning.sparsity(model)


def build_export(ctx: ExportContext, options: ExportOptions, bounds: Bounds | None = None,
                 threads: int | None = None) -> Built:
    """Export one variant in memory and verify it against PyTorch.

    Args:
        ctx: the run's shared export context.
        options: the variant.
        bounds: parity bounds (default ``Bounds()``).
        threads: onnxruntime intra-op threads of the returned runner (default: its own choice).

    Raises:
        UserError: when export fails or the exported model misses its parity bound.
    """
    options.validate()
    bounds = bounds or Bounds()
    model, sparsity = float_model(ctx, options)
    sig = ctx.signature
    fp32 = torch_runner(model, sig)
    exact = dict(tolerance=bounds.tolerance)
    if not ctx.by_class:
        close = dict(tolerance=max(bounds.tolerance, REGRESSION_INT8_TOLERANCE))
    else:
        close = dict(min_agreement=bounds.min_agreement)
    check = dict(inputs=ctx.inputs, classification=ctx.by_class)
    parity = []

    if options.format == "torchscript":
        if options.int8 is None:
            quantized = None
        elif options.int8 == "dynamic":
            quantized = torch_dynamic_int8(model)
        else:
            quantized = torch_static_int8(model, ctx.example, calibration_batches(ctx.data))
        data = to_torchscript(sig.wrap(quantized if quantized is not None else model), ctx.export_inputs)
        runner = graph_runner(load_torchscript(data), sig)
        if quantized is None:
            parity.append(verify(fp32, runner, ctx.x, reference_name="pytorch fp32", **exact, **check))
        else:
            parity.append(verify(fp32, runner, ctx.x, reference_name="pytorch fp32", **close, **check))
            # The saved archive must also be the very model that was quantized in memory.
            parity.append(verify(torch_runner(quantized, sig), runner, ctx.x, reference_name="pytorch int8 in memory",
                                 **exact, **check))
    elif options.format == "tflite":
        check_tflite(sig)
        data = to_tflite(model, ctx.example)
        runner = tflite_runner(data, threads)
        parity.append(verify(fp32, runner, ctx.x, reference_name="pytorch fp32", **exact, **check))
    else:
        key = (options.prune, options.amount, options.finetune_epochs, options.finetune_lr) if options.prune else None
        key = (key, options.opset)
        if key not in ctx.onnx_cache:
            ctx.onnx_cache[key] = to_onnx(sig.wrap(model), ctx.export_inputs, options.opset)
        data = ctx.onnx_cache[key]
        if options.int8 == "dynamic":
            data = onnx_dynamic_int8(data)
        elif options.int8 == "static":
            data = onnx_static_int8(data, [sig.feeds(b) for b in calibration_batches(ctx.data)])
        runner = onnx_runner(data, threads, signature=sig)
        bound = exact if options.int8 is None else close
        parity.append(verify(fp32, runner, ctx.x, reference_name="pytorch fp32", **bound, **check))

    failed = [p for p in parity if not p.ok]
    if failed:
        raise UserError(f"{options.label} export failed its parity check {failed[0].summary()}")
    info = {"format": options.format, "opset": options.opset if options.format == "onnx" else None,
            "dynamic_batch": options.format != "tflite", "dynamic_axes": sig.dynamic_axes(), "int8": options.int8,
            "quantizer": options.quantizer, "prune": options.prune,
            "amount": options.amount if options.prune else None,
            "finetune_epochs": options.finetune_epochs if options.prune else None, "sparsity": sparsity}
    if options.int8 == "static" and options.format == "onnx":
        info["int8_scheme"] = static_int8_scheme()  # chosen for the CPU that exported and checked the file
    if options.format == "tflite":
        info.update(dynamic_axes={}, batch=TFLITE_BATCH)
    return Built(options, data, runner, parity, info)
