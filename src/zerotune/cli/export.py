"""The `zerotune export` subcommand: flags -> ExportOptions -> `export_run` or `compare_run`.

`cli.main` calls ``add_parser(subparsers)`` and then ``args.func(args)``, turning a UserError
into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json

from .common import run_subcommand
from .lazyparse import defer_arguments


def cmd_export(args) -> int:
    from ..errors import UserError
    from ..export.api import export_run
    from ..export.build import DEFAULT_MIN_AGREEMENT, Bounds, ExportOptions
    from ..export.compare import compare_run, default_variants, print_comparison

    bounds = Bounds(args.tolerance, DEFAULT_MIN_AGREEMENT if args.min_agreement is None else args.min_agreement)
    if args.quant is not None and args.format != "gguf":
        raise UserError("--quant applies to --format gguf (f16 or q8_0); onnx and torchscript take --int8")
    if args.format == "hf" and not args.compare:
        return _export_hf(args)
    if args.format == "gguf" and not args.compare:
        return _export_gguf(args)
    if args.compare:
        variants = default_variants(args.amount, args.finetune_epochs, args.opset)
        c = compare_run(args.run, variants, iters=args.iters, threads=args.threads, checkpoint=args.checkpoint,
                        bounds=bounds)
        if args.json:
            print(json.dumps(c.to_dict(), indent=2))
        else:
            print_comparison(c)
        return 0
    options = ExportOptions(args.format, args.opset, args.int8, args.prune, args.amount, args.finetune_epochs,
                            args.finetune_lr)
    r = export_run(args.run, options, out=args.out, force=args.force, checkpoint=args.checkpoint, bounds=bounds)
    if args.json:
        print(json.dumps({"path": str(r.path), "sidecar": str(r.sidecar), "bytes": r.bytes, "export": r.info,
                          "parity": [p.to_dict() for p in r.parity]}, indent=2))
        return 0
    print(f"wrote {r.path} ({r.bytes / 1024:.1f} KB, {r.label}) and {r.sidecar.name}")
    for p in r.parity:
        print(f"parity {p.summary()}: ok")
    return 0


def _export_hf(args) -> int:
    from ..errors import UserError
    from ..export.hf_dir import export_hf

    if args.int8 or args.prune:
        raise UserError("--format hf writes float32 weights: --int8 and --prune apply to onnx and torchscript")
    r = export_hf(args.run, args.out, force=args.force, checkpoint=args.checkpoint, tolerance=args.tolerance)
    if args.json:
        print(json.dumps({"path": str(r.path), "bytes": r.bytes, "format": "hf", "max_diff": r.max_diff,
                          "merged_adapters": r.merged_adapters, "eos_token_id": r.stop_ids}, indent=2))
        return 0
    adapters = ", LoRA adapters merged" if r.merged_adapters else ""
    print(f"wrote {r.path}/ ({r.bytes / 1e6:.1f} MB, Hugging Face directory{adapters}; generation stops at "
          f"token ids {r.stop_ids})")
    print(f"read back by transformers: max |logit diff| {r.max_diff:.2g}: ok")
    return 0


def _export_gguf(args) -> int:
    from ..errors import UserError
    from ..export.gguf_export import export_gguf

    if args.int8 or args.prune:
        raise UserError("--format gguf quantizes with --quant f16 or q8_0: --int8 and --prune apply to onnx and "
                        "torchscript")
    r = export_gguf(args.run, args.quant or "f16", args.out, force=args.force, checkpoint=args.checkpoint,
                    min_agreement=args.min_agreement)
    if args.json:
        print(json.dumps({"path": str(r.path), "bytes": r.bytes, "format": "gguf", "quant": r.quant,
                          "write_seconds": r.write_seconds, "merged_adapters": r.merged_adapters,
                          "eos_token_id": r.stop_ids, "agreement": vars(r.agreement)}, indent=2))
        return 0
    adapters = ", LoRA adapters merged" if r.merged_adapters else ""
    print(f"wrote {r.path} ({r.bytes / 1e6:.1f} MB, GGUF {r.quant}{adapters}; written in {r.write_seconds:.1f} s)")
    print(f"read back by transformers: {r.agreement.summary()}: ok")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `export` on the main CLI's subparsers."""
    p = subparsers.add_parser(
        "export", help="export a run's model (ONNX/TorchScript, int8, pruned), checked against PyTorch",
        description="Export a run's model to ONNX or TorchScript, check its outputs against PyTorch on the run's "
                    "test inputs, and write it with a JSON sidecar (normalisation, classes, input shape) into "
                    "RUN/export/. With --compare, build every variant in memory and print one table instead.")
    defer_arguments(p, _add_arguments)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from ..export.build import CAUSAL_LM_FORMATS, DEFAULT_MIN_AGREEMENT, DEFAULT_TOLERANCE, EXPORT_FORMATS
    from ..export.onnx_export import DEFAULT_OPSET
    from ..export.prune import PRUNE_METHODS
    from ..export.quantize import INT8_MODES

    p.add_argument("run", help="run directory")
    p.add_argument("--format", default="onnx", choices=[*EXPORT_FORMATS, *CAUSAL_LM_FORMATS],
                   help="onnx (quantized with onnxruntime), torchscript (quantized with PyTorch), tflite "
                        "(float32, batches of one; pip install 'zerotune[tflite]'), hf (a tuned transformers "
                        "causal LM as a Hugging Face directory, LoRA merged, in RUN/export/hf) or gguf (a tuned "
                        "Llama or Qwen2 causal LM as one GGUF file for llama.cpp, in RUN/export/model-QUANT.gguf) "
                        "(default: onnx)")
    p.add_argument("--quant", help="gguf: f16 (default) or q8_0")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    p.add_argument("--int8", choices=INT8_MODES, help="int8 quantization: dynamic (Linear weights) or static "
                                                      "(weights and activations, calibrated on training data)")
    p.add_argument("--prune", choices=PRUNE_METHODS, help="magnitude pruning: global (unstructured) or channel "
                                                          "(structured by output channel)")
    p.add_argument("--amount", type=float, default=0.5, help="fraction pruned (default: 0.5)")
    p.add_argument("--finetune-epochs", type=int, default=0, help="epochs of fine-tuning after pruning (default: 0)")
    p.add_argument("--finetune-lr", type=float, default=1e-4,
                   help="Adam learning rate of that fine-tuning (default: 1e-4)")
    p.add_argument("--out", help="output file (.onnx / .pt / .gguf) or directory (default: RUN/export/; hf: the "
                                 "directory to write, default RUN/export/hf)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"max |output difference| allowed for float exports (default: {DEFAULT_TOLERANCE:g})")
    p.add_argument("--min-agreement", type=float,
                   help="int8: min fraction of inputs given the same class as PyTorch "
                        f"(default: {DEFAULT_MIN_AGREEMENT}); gguf: min fraction of greedy answers the same as "
                        "PyTorch's (default: 1 for f16, 0.95 for q8_0)")
    p.add_argument("--compare", action="store_true",
                   help="compare every variant (size, latency at batch 1 and 32, test accuracy); writes nothing")
    p.add_argument("--iters", type=int, default=100, help="--compare: timed calls per batch size (default: 100)")
    p.add_argument("--threads", type=int, help="--compare: CPU threads for PyTorch and onnxruntime")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_export)


def main(argv: list[str] | None = None) -> int:
    """``python -m zerotune.export ...``: the same as ``zerotune export ...``."""
    return run_subcommand("export", add_parser, argv)
