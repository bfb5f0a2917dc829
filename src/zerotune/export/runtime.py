"""Running a model in each runtime through one signature: float32 NumPy batch in, NumPy outputs out.

Export parity checks, the comparison table and the HTTP server all call models through these
runners, so every number they report comes from the same code path.
"""

from __future__ import annotations

import io
import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import UserError

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


def torch_runner(model: nn.Module) -> Runner:
    """Run an eager (or scripted) PyTorch module on the CPU without autograd."""
    model.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).float().numpy()

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


def onnx_runner(model: bytes, threads: int | None = None) -> Runner:
    """Run an ONNX model (bytes) with onnxruntime on the CPU."""
    sess = ort_session(model, threads)
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run
