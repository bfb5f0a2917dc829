"""Running a model in each runtime through one call: a native NumPy batch in, NumPy outputs out.

A native batch is what the run's data holds (float32 arrays; token ids padded with -1 for text);
`signature.Signature` turns it into the named inputs an exported graph takes.

Export parity checks, the comparison table and the HTTP server all call models through these
runners, so every number they report comes from the same code path.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn

from ..errors import UserError

if TYPE_CHECKING:
    from .signature import Signature

Runner = Callable[[np.ndarray], np.ndarray]


def first_line(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def require(*modules: str, extra: str) -> None:
    """Raise a UserError naming the pip extra when an optional dependency is missing."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"this needs {', '.join(missing)}: pip install 'zerotune[{extra}]'")


def torch_runner(model: nn.Module, signature: "Signature | None" = None) -> Runner:
    """Run an eager PyTorch module on native batches (the form the run's data holds), on the CPU
    without autograd.

    Args:
        model: a module taking native batches (the trained model, prepared for export).
        signature: the run's input signature (default: float32 arrays).
    """
    model.eval()
    dtype = signature.native_dtype if signature is not None else np.float32

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))).float().numpy()

    return run


def graph_runner(module: nn.Module, signature: "Signature | None" = None) -> Runner:
    """Run a module that takes the graph inputs (a TorchScript export, a wrapped model) on native batches.

    Args:
        module: a module whose forward takes the signature's graph inputs, in order.
        signature: the run's input signature (default: float32 arrays, where this equals `torch_runner`).
    """
    if signature is None:
        return torch_runner(module)
    module.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(*signature.tensors(x)).float().numpy()

    return run


def load_torchscript(data: bytes) -> torch.jit.ScriptModule:
    """Load a TorchScript archive from bytes.

    TorchScript archives run TorchScript code only, never arbitrary Python, but they are still a
    program: load only files you exported yourself.

    Raises:
        UserError: when the bytes are not a TorchScript archive.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    except (RuntimeError, ValueError) as e:
        raise UserError(f"not a valid TorchScript file: {first_line(e)}") from None


def ort_session(model: bytes, threads: int | None = None):
    """An onnxruntime CPU session for an ONNX model given as bytes.

    Args:
        model: the serialized ONNX model.
        threads: intra-op threads (default: onnxruntime's choice).

    Raises:
        UserError: when onnxruntime cannot load the model.
    """
    require("onnxruntime", extra="export")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: optimiser notes would drown the CLI output
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types, not a common base
        raise UserError(f"onnxruntime cannot load the model: {first_line(e)}") from None


def onnx_runner(model: bytes, threads: int | None = None, signature: "Signature | None" = None) -> Runner:
    """Run an ONNX model (bytes) with onnxruntime on the CPU, on native batches.

    Args:
        model: the serialized ONNX model.
        threads: intra-op threads (default: onnxruntime's choice).
        signature: the run's input signature, which names the graph's inputs (default: the graph's
            single input, fed float32 arrays).
    """
    sess = ort_session(model, threads)
    if signature is None:
        name = sess.get_inputs()[0].name

        def run(x: np.ndarray) -> np.ndarray:
            return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

        return run
    have, want = sorted(i.name for i in sess.get_inputs()), sorted(signature.input_names)
    if have != want:
        raise UserError(f"the ONNX model takes inputs {', '.join(have)}, not {', '.join(want)} as its sidecar says")

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, signature.feeds(x))[0]

    return run
