"""Int8 exports with both quantizers: file sizes, accuracy on the test split, round trips."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from zerotune import load_run
from zerotune.data import build_data
from zerotune.export import ExportOptions, export_run
from zerotune.export.quantize import torch_dynamic_int8
from zerotune.export.runtime import load_torchscript, onnx_runner, torch_runner


def accuracy(runner, split) -> float:
    return float((runner(split.x.numpy()).argmax(1) == split.y.numpy()).mean())


@pytest.fixture(scope="module")
def mlp_exports(mlp_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp-exports")
    return {
        "fp32": export_run(mlp_run, ExportOptions(), out=out),
        "ort": export_run(mlp_run, ExportOptions(int8="dynamic"), out=out),
        "ts-fp32": export_run(mlp_run, ExportOptions("torchscript"), out=out),
        "ts-int8": export_run(mlp_run, ExportOptions("torchscript", int8="dynamic"), out=out),
    }


def test_onnxruntime_dynamic_int8_linear_heavy(mlp_run, mlp_exports):
    fp32, int8 = mlp_exports["fp32"], mlp_exports["ort"]
    assert int8.path.name == "model-int8-dynamic.onnx"
    assert int8.bytes <= 0.3 * fp32.bytes  # the Linear weights are nearly all of the file
    ops = {n.op_type for n in onnx.load(str(int8.path)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops
    test = build_data(load_run(mlp_run).config.data).test
    acc32 = accuracy(onnx_runner(fp32.path.read_bytes()), test)
    acc8 = accuracy(onnx_runner(int8.path.read_bytes()), test)
    assert acc32 - acc8 <= 0.005  # at most half a point lost
    (p,) = int8.parity
    assert p.reference == "pytorch fp32" and p.agreement >= 0.97 and 0 < p.max_abs_diff < 1.0
    assert int8.info["quantizer"] == "onnxruntime" and int8.info["int8"] == "dynamic"


def test_pytorch_dynamic_int8_round_trip(mlp_run, mlp_exports):
    ts32, ts8 = mlp_exports["ts-fp32"], mlp_exports["ts-int8"]
    assert ts8.bytes < 0.5 * ts32.bytes
    vs_fp32, round_trip = ts8.parity
    assert vs_fp32.agreement >= 0.97
    assert round_trip.reference == "pytorch int8 in memory" and round_trip.max_abs_diff == 0.0
    loaded = load_torchscript(ts8.path.read_bytes())
    test = build_data(load_run(mlp_run).config.data).test
    acc8 = accuracy(torch_runner(loaded), test)
    acc32 = accuracy(torch_runner(load_run(mlp_run).model), test)
    assert acc32 - acc8 <= 0.005


def test_torch_dynamic_int8_replaces_every_linear():
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    q = torch_dynamic_int8(model)
    kinds = [type(m).__module__ + "." + type(m).__name__ for m in q.modules()]
    assert sum("quantized.dynamic" in k and k.endswith("Linear") for k in kinds) == 2
    assert isinstance(model[1], nn.Linear)  # the original is untouched
    x = torch.randn(4, 8)
    assert torch.allclose(q(x), model(x), atol=0.05)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_static_int8_cnn_calibrated_on_training_data(cnn_run, tmp_path, fmt):
    fp32 = export_run(cnn_run, ExportOptions(fmt), out=tmp_path)
    int8 = export_run(cnn_run, ExportOptions(fmt, int8="static"), out=tmp_path)
    assert int8.bytes < 0.75 * fp32.bytes  # conv weights are int8 too, not only the Linear ones
    assert int8.parity[0].agreement >= 0.97
    assert int8.info["quantizer"] == ("onnxruntime" if fmt == "onnx" else "pytorch")
    if fmt == "onnx":
        ops = [n.op_type for n in onnx.load(str(int8.path)).graph.node]
        assert ops.count("QuantizeLinear") >= 3 and "Conv" in ops  # QDQ around every conv
        runner = onnx_runner(int8.path.read_bytes())
        assert runner(np.zeros((1, 1, 8, 8), np.float32)).shape == (1, 10)
    else:
        assert int8.parity[1].max_abs_diff == 0.0  # the archive is the calibrated model


@pytest.mark.parametrize("machine, flags, reduce", [("x86_64", {"avx2", "fma"}, True), ("x86_64", {"avx512_vnni"}, False),
                                                    ("x86_64", {"avx_vnni"}, False), ("aarch64", {"asimd"}, False)])
def test_static_int8_scheme_follows_the_cpu(monkeypatch, machine, flags, reduce):
    from zerotune.compute import cpu
    from zerotune.export.quantize import static_int8_scheme

    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: frozenset(flags))
    assert static_int8_scheme() == {"activations": "u8", "weights": "s8", "reduce_range": reduce}


@pytest.mark.parametrize("reduce", [True, False])
def test_static_int8_passes_its_parity_bound_with_either_scheme(cnn_run, tmp_path, monkeypatch, reduce):
    """Without VNNI (x86 AVX2/AVX512) the weights keep 7 bits, so u8×s8 pair sums cannot saturate."""
    from zerotune.export import quantize

    monkeypatch.setattr(quantize, "x86_without_vnni", lambda: reduce)
    int8 = export_run(cnn_run, ExportOptions(int8="static"), out=tmp_path / "m.onnx")
    assert int8.info["int8_scheme"]["reduce_range"] is reduce
    assert int8.parity[0].agreement >= 0.97
    weights = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(int8.path)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2]
    widest = max(int(np.abs(w.astype(np.int32)).max()) for w in weights)
    assert widest <= 64 if reduce else widest > 64
