"""TFLite export through litert-torch (formerly ai-edge-torch), checked with LiteRT's interpreter.

litert-torch lowers a ``torch.export`` program to a ``.tflite`` flatbuffer. Its lowering cannot
keep the batch axis free (a ``Flatten`` becomes a reshape of fixed size: converting with a
dynamic batch fails, and resizing the input of a converted file fails in XNNPACK), so the file
takes one example per call, the shape on-device runtimes use. `tflite_runner` feeds a larger batch
one example at a time.

Both packages come with the optional extra ``zerotune[tflite]``.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn

from ..errors import UserError
from .quiet import quiet
from .runtime import Runner, first_line, require

# TensorFlow's and glog's C++ loggers write to the process's stderr; these levels keep errors only.
_QUIET_CPP_LOGS = {"TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "2"}

TFLITE_BATCH = 1  # examples per call of the exported graph


def check_tflite(signature) -> None:
    """Raise a UserError unless the extra is installed and the model takes one float array."""
    require("litert_torch", "ai_edge_litert", extra="tflite")
    if signature.kind != "array":
        raise UserError(f"TFLite export takes models with one float input (images, tables); this one takes "
                        f"{signature.kind} inputs: export it to onnx instead")


def to_tflite(model: nn.Module, example: torch.Tensor) -> bytes:
    """Convert an eval-mode ``model`` to a TFLite flatbuffer taking batches of one example.

    Args:
        model: a module mapping a float32 batch to one tensor.
        example: a float32 batch of native inputs; its first example fixes the input shape.

    Raises:
        UserError: when litert-torch cannot convert the model.
    """
    require("litert_torch", extra="tflite")
    sample = example[:TFLITE_BATCH].float().contiguous()
    try:
        with quiet(env=_QUIET_CPP_LOGS):
            import litert_torch  # inside: its C++ logging reads the quiet levels when it loads

            return bytes(litert_torch.convert(model.eval(), (sample,)).model_content())
    except Exception as e:  # the converter raises many unrelated types; all mean "cannot convert"
        raise UserError(f"TFLite conversion failed: {first_line(e)}") from None


def tflite_runner(model: bytes, threads: int | None = None) -> Runner:
    """Run a TFLite flatbuffer with LiteRT's interpreter on native float batches, one example per call.

    Args:
        model: the ``.tflite`` bytes.
        threads: interpreter threads (default: LiteRT's choice).

    Raises:
        UserError: when the interpreter cannot load the model.
    """
    require("ai_edge_litert", extra="tflite")
    try:
        with quiet(env=_QUIET_CPP_LOGS):
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=model, num_threads=threads)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise UserError(f"LiteRT cannot load the model: {first_line(e)}") from None
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        outputs = []
        for i in range(0, len(x), TFLITE_BATCH):
            interpreter.set_tensor(inp["index"], x[i:i + TFLITE_BATCH])
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(out["index"]).copy())
        return np.concatenate(outputs) if outputs else np.empty((0, *out["shape"][1:]), np.float32)

    return run
