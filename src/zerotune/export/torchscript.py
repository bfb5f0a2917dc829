"""TorchScript export by tracing and freezing: a self-contained archive that runs without the
model's Python code."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from ..errors import UserError
from .runtime import first_line
from .signature import ExampleInputs


def to_torchscript(model: nn.Module, example: "torch.Tensor | ExampleInputs") -> bytes:
    """Trace ``model`` on ``example`` and return the TorchScript archive as bytes.

    Tracing records the operations run on the example; our models have no data-dependent control
    flow, and the batch dimension stays free because none of them bakes in ``x.shape[0]`` (nor the
    sequence length: token models read it from their inputs' shapes, which a trace keeps symbolic).

    Args:
        model: an eval-mode module taking the example's inputs.
        example: a batch for a single-input model, or the graph's example inputs (`Signature.example`).

    Raises:
        UserError: when the model cannot be traced.
    """
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings about TorchScript itself
            args = example.args if isinstance(example, ExampleInputs) else (example,)
            traced = torch.jit.trace(model.eval(), args, check_trace=False)
            # Freezing inlines the submodules and folds weights into constants (batch norm into the
            # layer before it): a smaller file, and no per-module Python left to run.
            frozen = torch.jit.freeze(traced)
            buf = io.BytesIO()
            torch.jit.save(frozen, buf)
    except (RuntimeError, TypeError, ValueError) as e:
        raise UserError(f"TorchScript export failed: {first_line(e)}") from None
    return buf.getvalue()
