"""Int8 quantization with PyTorch's quantizer (for TorchScript) and onnxruntime's (for ONNX).

- dynamic: Linear weights stored as int8; activations quantized on the fly per batch. No data
  needed. Conv layers stay float32, which is why it pays off for Linear-heavy models.
- static: weights and activations int8, with activation ranges calibrated on training inputs.
  Covers convolutions too (Jacob et al. 2018, "Quantization and Training of Neural Networks for
  Efficient Integer-Arithmetic-Only Inference").
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ..compute.cpu import x86_without_vnni
from .quiet import quiet
from ..errors import UserError
from .runtime import first_line, require

INT8_MODES = ("dynamic", "static")


def _engine() -> str:
    """Pick (and select) the quantized kernel backend this CPU has."""
    supported = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm", "qnnpack") if e in supported), None)
    if engine is None:
        raise UserError("this PyTorch build has no quantized CPU kernels (x86, fbgemm or qnnpack)")
    torch.backends.quantized.engine = engine
    return engine


def torch_dynamic_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every nn.Linear replaced by a dynamically quantized int8 Linear."""
    _engine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def torch_static_int8(model: nn.Module, example: torch.Tensor, calibration: Iterable[np.ndarray]) -> nn.Module:
    """A statically quantized copy of ``model`` (FX graph mode), calibrated on ``calibration`` batches.

    Raises:
        UserError: when the model has layers the PyTorch quantizer cannot handle.
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engine = _engine()
    model = _explicit_same_padding(copy.deepcopy(model).eval())
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            prepared = prepare_fx(model, get_default_qconfig_mapping(engine), (example,))
            for batch in calibration:
                prepared(torch.from_numpy(batch))
            return convert_fx(prepared).eval()
    except Exception as e:  # FX tracing and lowering raise many types; all mean "not feasible here"
        raise UserError(f"static int8 with the PyTorch quantizer failed: {first_line(e)}") from None


def _explicit_same_padding(model: nn.Module) -> nn.Module:
    """Replace padding='same' by the equal explicit padding: quantized convs accept only numbers."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.padding == "same":
            if any(k % 2 == 0 for k in m.kernel_size) or any(s != 1 for s in m.stride):
                raise UserError("static int8 with PyTorch needs odd kernels with stride 1 where padding='same'")
            m.padding = tuple(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation))
    return model


def onnx_dynamic_int8(model: bytes) -> bytes:
    """Quantize the MatMul/Gemm (Linear) weights of an ONNX model to int8 with onnxruntime."""
    require("onnxruntime", extra="export")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="zerotune-q-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        with quiet(stdout=False):
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        return dst.read_bytes()


class _Batches:
    """onnxruntime's CalibrationDataReader protocol (``get_next``) over NumPy batches or named feeds."""

    def __init__(self, name: str, batches: Iterable[np.ndarray | dict[str, np.ndarray]]):
        self._it = iter([{k: np.ascontiguousarray(v) for k, v in b.items()} if isinstance(b, dict)
                         else {name: np.ascontiguousarray(b, dtype=np.float32)} for b in batches])

    def get_next(self):
        return next(self._it, None)


def static_int8_scheme() -> dict:
    """onnxruntime's static int8 settings for this CPU: u8 activations, s8 per-channel weights, and on an
    x86 CPU without VNNI 7-bit weights (``reduce_range``). There onnxruntime's u8×s8 kernels add pairs of
    products in 16 bits (VPMADDUBSW), which saturate: measured here on the digits CNN, max |diff| 2.46
    against 0.36 with reduce_range. onnxruntime's documentation recommends reduce_range (or u8 weights) there."""
    return {"activations": "u8", "weights": "s8", "reduce_range": x86_without_vnni()}


def onnx_static_int8(model: bytes, calibration: Iterable[np.ndarray | dict[str, np.ndarray]],
                     input_name: str = "input") -> bytes:
    """Statically quantize an ONNX model (QDQ format, per-channel weights; see `static_int8_scheme`) with onnxruntime.

    Args:
        model: the float32 ONNX model.
        calibration: float32 batches for the input ``input_name``, or dicts of named inputs
            (`Signature.feeds`) for graphs that take several.

    Raises:
        UserError: when onnxruntime cannot quantize the model.
    """
    require("onnxruntime", extra="export")
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = _Batches(input_name, calibration)
    with tempfile.TemporaryDirectory(prefix="zerotune-q-") as tmp:
        src, pre, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        try:
            # onnxruntime's shape inference saves its partial result into the working directory when it
            # gives up (transformer graphs): let it do so in the temporary directory, not in the user's.
            with quiet(stdout=False), _working_directory(tmp):
                # Shape inference and graph fusion first, as onnxruntime recommends for static quantization.
                quant_pre_process(str(src), str(pre))
                quantize_static(pre, dst, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                reduce_range=static_int8_scheme()["reduce_range"])
        except Exception as e:  # onnxruntime's quantizer raises assorted types for unsupported graphs
            raise UserError(f"static int8 with onnxruntime failed: {first_line(e)}") from None
        return dst.read_bytes()


@contextlib.contextmanager
def _working_directory(path):
    """``contextlib.chdir`` (Python 3.11+), for 3.10 too."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
