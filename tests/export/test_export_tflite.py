"""TFLite export through litert-torch: the file, its parity with PyTorch, its row in --compare.

Skipped where the optional extra ``zerotune[tflite]`` is not installed, except the message that
names it.
"""

import importlib.util
import json

import numpy as np
import pytest

from zerotune.cli.main import main
from zerotune.errors import UserError
from zerotune.export import ExportOptions, export_run
from zerotune.export.compare import compare_run
from zerotune.runload.load import load_run, run_data

HAVE_TFLITE = importlib.util.find_spec("litert_torch") is not None
needs_tflite = pytest.mark.skipif(not HAVE_TFLITE, reason="needs the tflite extra: pip install 'zerotune[tflite]'")


def test_without_the_extra_export_names_it(cnn_run, tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litert_torch" else real(name, *a))
    assert main(["export", str(cnn_run), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "this needs litert_torch" in err and "pip install 'zerotune[tflite]'" in err and "Traceback" not in err
    assert not (tmp_path / "m.tflite").exists()


def test_int8_is_refused_for_tflite():
    with pytest.raises(UserError, match="TFLite export is float32 only"):
        ExportOptions("tflite", int8="dynamic").validate()


@needs_tflite
def test_tflite_file_matches_pytorch_in_the_interpreter(cnn_run, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    result = export_run(cnn_run, ExportOptions("tflite"), out=tmp_path / "cnn.tflite")
    assert result.parity[0].ok and result.parity[0].max_abs_diff < 1e-4
    sidecar = json.loads(result.sidecar.read_text(encoding="utf-8"))
    assert sidecar["format"] == "tflite" and sidecar["export"]["batch"] == 1
    assert sidecar["export"]["dynamic_batch"] is False
    # The written file, in a fresh interpreter, gives PyTorch's logits on the test split.
    run = load_run(cnn_run)
    x = run_data(run).test.x[:20].numpy()
    interpreter = Interpreter(model_path=str(result.path))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 1, 8, 8]
    got = []
    for row in x:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        got.append(interpreter.get_tensor(out["index"])[0])
    import torch

    with torch.no_grad():
        want = run.model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.stack(got), want, atol=1e-4)


@needs_tflite
def test_compare_has_a_tflite_row_with_the_eager_accuracy(cnn_run):
    c = compare_run(cnn_run, [ExportOptions("tflite")], iters=2)
    eager, tflite = c.rows
    assert tflite.variant == "tflite" and tflite.runtime.startswith("litert") and tflite.note == ""
    assert tflite.metric == pytest.approx(eager.metric) and tflite.bytes > 0
