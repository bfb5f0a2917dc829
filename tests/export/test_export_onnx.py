"""ONNX and TorchScript export: files, sidecars, parity with PyTorch, the batch axis, bad input."""

import copy
import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from zerotune import load_run
from zerotune.data import build_data
from zerotune.errors import UserError
from zerotune.export import ExportOptions, export_run, prepare_for_export, read_sidecar
from zerotune.export.sidecar import sha256


@pytest.fixture(scope="module")
def cnn_onnx(cnn_run):
    return export_run(cnn_run)


def test_onnx_file_sidecar_and_reported_parity(cnn_run, cnn_onnx):
    assert cnn_onnx.path == cnn_run / "export" / "model.onnx"
    assert cnn_onnx.sidecar == cnn_run / "export" / "model.onnx.json"
    data = cnn_onnx.path.read_bytes()
    assert len(data) == cnn_onnx.bytes > 10_000
    side = json.loads(cnn_onnx.sidecar.read_text())
    meta = json.loads((cnn_run / "meta.json").read_text())
    assert side["sha256"] == sha256(data) and side["format"] == "onnx" and side["file"] == "model.onnx"
    assert side["meta"]["x_mean"] == meta["x_mean"] and side["meta"]["x_std"] == meta["x_std"]
    assert side["meta"]["class_names"] == [str(i) for i in range(10)]
    assert side["input"]["shape"] == ["batch", 1, 8, 8]
    assert side["source"]["checkpoint"] == "best" and side["source"]["model"] == "cnn"
    assert side["export"]["opset"] == 18 and side["export"]["dynamic_batch"] is True
    (p,) = side["parity"]
    assert p["inputs"] == "test split" and p["n"] == 360 and p["ok"] is True
    assert 0 <= p["max_abs_diff"] <= 1e-4 and p["agreement"] == 1.0
    assert sorted(f.name for f in cnn_onnx.path.parent.iterdir()) == ["model.onnx", "model.onnx.json"]  # no temp files


def test_onnxruntime_matches_pytorch_on_test_split(cnn_run, cnn_onnx):
    run = load_run(cnn_run)
    x = build_data(run.config.data).test.x
    sess = ort.InferenceSession(str(cnn_onnx.path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, out.name) == ("input", "logits")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [1, 8, 8]  # free batch axis
    with torch.no_grad():
        ref = run.model(x).numpy()
    for n in (1, 7, len(x)):
        got = sess.run(None, {"input": x[:n].numpy()})[0]
        assert got.shape == (n, 10)
        assert np.abs(got - ref[:n]).max() < 1e-4
    assert (sess.run(None, {"input": x.numpy()})[0].argmax(1) == ref.argmax(1)).all()


def test_chosen_opset_is_the_files_opset(mlp_run, tmp_path):
    r = export_run(mlp_run, ExportOptions(opset=17), out=tmp_path / "m17.onnx")
    model = onnx.load(str(r.path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    onnx.checker.check_model(model)
    assert r.parity[0].max_abs_diff < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export(cnn_run, tmp_path):
    r = export_run(cnn_run, ExportOptions("torchscript"), out=tmp_path)
    assert r.path == tmp_path / "model.pt" and (tmp_path / "model.pt.json").exists()
    run = load_run(cnn_run)
    scripted = torch.jit.load(str(r.path))
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(scripted(x), run.model(x), atol=1e-5)
    assert read_sidecar(r.path, r.path.read_bytes())["format"] == "torchscript"


def test_existing_files_need_force(tabular_run, tmp_path):
    out = tmp_path / "m.pt"
    export_run(tabular_run, ExportOptions("torchscript"), out=out)
    first = out.read_bytes()
    with pytest.raises(UserError, match="already exists; pass --force"):
        export_run(tabular_run, ExportOptions("torchscript"), out=out)
    out.with_name("m.pt.json").unlink()  # the model file alone also blocks
    with pytest.raises(UserError, match="already exists"):
        export_run(tabular_run, ExportOptions("torchscript"), out=out)
    r = export_run(tabular_run, ExportOptions("torchscript"), out=out, force=True, checkpoint="last")
    assert r.path.exists() and json.loads(r.sidecar.read_text())["source"]["checkpoint"] == "last"
    assert len(first) > 0


def test_parity_bound_is_enforced_and_nothing_written(tabular_run, tmp_path, monkeypatch):
    from zerotune.export import build

    real = build.to_onnx

    def off_by_a_little(model, example, opset):
        # A real ONNX file whose weights differ from PyTorch's by 1e-3: the check must catch it.
        model = copy.deepcopy(model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1e-3)
        return real(model, example, opset)

    monkeypatch.setattr(build, "to_onnx", off_by_a_little)
    with pytest.raises(UserError, match="failed its parity check .* max \\|diff\\| <= 0.0001"):
        export_run(tabular_run, ExportOptions(), out=tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, message", [
    (ExportOptions(format="coreml"), "export format 'coreml' is unknown; allowed: onnx, torchscript, tflite"),
    (ExportOptions(opset=12), "opset 12 is not supported; allowed: 16 to"),
    (ExportOptions(opset=99), "opset 99 is not supported"),
    (ExportOptions(int8="int4"), "int8 mode 'int4' is unknown; allowed: dynamic, static"),
    (ExportOptions(prune="random"), "prune method 'random' is unknown"),
    (ExportOptions(prune="global", amount=1.5), "prune amount must be between 0 and 1"),
    (ExportOptions(finetune_epochs=2), "fine-tuning applies after pruning"),
])
def test_bad_options_are_user_errors(tabular_run, options, message):
    with pytest.raises(UserError, match=message.replace("(", "\\(").replace(")", "\\)")):
        export_run(tabular_run, options)


def test_bad_runs_and_paths_are_user_errors(tabular_run, tmp_path, saved_before_checksums):
    with pytest.raises(UserError, match="does not exist"):
        export_run(tmp_path / "missing")
    with pytest.raises(UserError, match="is not a zerotune run"):
        export_run(tmp_path)
    with pytest.raises(UserError, match="ONNX files must end in .onnx"):
        export_run(tabular_run, out=tmp_path / "model.pt")
    broken = tmp_path / "broken"
    shutil.copytree(tabular_run, broken, ignore=shutil.ignore_patterns("export"))
    for ckpt in ("best", "last"):
        (broken / "checkpoints" / ckpt / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="best/model.safetensors is damaged"):
        export_run(broken)
    saved_before_checksums(broken / "checkpoints" / "best")  # no checksums to check against
    with pytest.raises(UserError, match="not a valid safetensors file"):
        export_run(broken)


class _TupleModel(nn.Module):
    def __init__(self, as_dict=False):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.as_dict = as_dict

    def forward(self, x):
        logits = self.lin(x)
        return {"logits": logits, "loss": logits.sum()} if self.as_dict else (logits, logits.sum())


@pytest.mark.parametrize("as_dict", [False, True])
def test_prepare_for_export_keeps_only_logits(as_dict):
    model = _TupleModel(as_dict).train()
    x = torch.randn(2, 4)
    ready = prepare_for_export(model, x)
    assert not ready.training and model.training  # a copy; the original is untouched
    assert torch.equal(ready(x), model.lin(x).detach())
    assert all(not p.requires_grad for p in ready.parameters())


def test_prepare_for_export_leaves_plain_models_unwrapped():
    model = nn.Sequential(nn.Linear(4, 3))
    ready = prepare_for_export(model, torch.randn(2, 4))
    assert isinstance(ready, nn.Sequential) and ready is not model
