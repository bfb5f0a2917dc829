"""ONNX export with free batch (and sequence) axes, through PyTorch's torch.export-based exporter."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..errors import UserError
from .quiet import quiet
from .runtime import first_line, require
from .signature import OUTPUT_NAME, ExampleInputs

# The exporter's progress lines, version-converter tracebacks and deprecation notes.
_EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnxscript", "torch._dynamo")

DEFAULT_OPSET = 18  # the exporter's native opset: no version conversion needed
# Below 16 the exporter's version converter has no adapters for ops every model uses.
MIN_OPSET = 16
INPUT_NAME = "input"


def max_opset() -> int:
    """The newest opset the installed onnx package knows."""
    require("onnx", "onnxscript", extra="export")
    import onnx

    return int(onnx.defs.onnx_opset_version())


def check_opset(opset: int) -> None:
    """Raise a UserError unless ``opset`` is one the exporter can target."""
    hi = max_opset()
    if not MIN_OPSET <= opset <= hi:
        raise UserError(f"opset {opset} is not supported; allowed: {MIN_OPSET} to {hi} (default {DEFAULT_OPSET})")


def to_onnx(model: nn.Module, example: "torch.Tensor | ExampleInputs", opset: int = DEFAULT_OPSET) -> bytes:
    """Export ``model`` to ONNX at ``opset`` with free batch (and sequence) axes, returning the file's bytes.

    Args:
        model: an eval-mode module mapping the example's inputs to one tensor.
        example: the graph's example inputs, names and dynamic axes (`Signature.example`), or a
            float32 batch for a single input named ``input`` whose batch axis is free.
        opset: the default ONNX domain's opset version.

    Raises:
        UserError: when the model cannot be exported at that opset.
    """
    check_opset(opset)
    if isinstance(example, torch.Tensor):
        if example.shape[0] < 2:  # a batch of 1 would let the exporter fix B = 1
            example = example.expand(2, *example.shape[1:]).contiguous()
        example = ExampleInputs((example,), [INPUT_NAME], ({0: torch.export.Dim("batch")},), [OUTPUT_NAME])
    try:
        with quiet(_EXPORTER_LOGGERS, drop=logging.CRITICAL):
            program = torch.onnx.export(
                model.eval(), example.args, None, input_names=example.names, output_names=example.output_names,
                opset_version=opset, dynamo=True, external_data=False, verbose=False,
                dynamic_shapes=example.dynamic_shapes,
            )
        proto = program.model_proto
    except Exception as e:  # the exporter raises many unrelated types; all mean "cannot export"
        raise UserError(f"ONNX export failed: {first_line(e)}") from None
    got = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:
        # The exporter falls back to its native opset when it cannot convert; refuse rather than mislabel.
        raise UserError(f"this model cannot be exported at opset {opset} (the exporter produced opset {got}); "
                        f"use opset {DEFAULT_OPSET} or newer")
    _strip_trace_metadata(proto)
    return proto.SerializeToString()


def _strip_trace_metadata(proto) -> None:
    """Drop the exporter's per-node debugging notes (stack traces with this machine's file paths, FX
    node text): several KB a node, they would make a small transformer's file five times its weights."""
    for node in proto.graph.node:
        keep = [(p.key, p.value) for p in node.metadata_props
                if not (p.key.startswith("pkg.torch.") or p.key == "namespace")]
        if len(keep) != len(node.metadata_props):
            del node.metadata_props[:]
            for key, value in keep:
                node.metadata_props.add(key=key, value=value)
