"""`zerotune export RUN` on instruction-tuned runs: ONNX logits over token ids, LoRA merged, parity checked."""

import json

import numpy as np
import onnxruntime as ort
import torch

from zerotune import load_run
from zerotune.export.api import export_run

from test_sft_serve import tune


def exported(run_dir, cli=None):
    """(logits of the exported model, logits of the run's own model, sidecar) on token ids of another length
    than traced; exported by the command line (the `cli` fixture, when given) or by `export_run`."""
    if cli:
        done = cli("export", run_dir)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert out.splitlines()[-1].startswith("parity ") and out.endswith(": ok\n"), out
    else:
        export_run(run_dir)
    path = run_dir / "export" / "model.onnx"
    side = json.loads((run_dir / "export" / "model.onnx.json").read_text())
    assert side["input"]["kind"] == "lm" and side["parity"][0]["ok"] and side["meta"]["task"] == "sft"
    model = load_run(run_dir).model
    x = np.random.default_rng(1).integers(0, side["input"]["vocab_size"], size=(2, 41))
    session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input_ids": x})
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).float().numpy()
    return got, expected, side


def test_a_tuned_transformers_run_exports_its_merged_logits(tmp_path, tiny_lms, sft_file, cli):
    run_dir = tune(tmp_path, tiny_lms["qwen2"], sft_file, "train.max_steps=10", "optim.lr=1e-2", "log.name=hf")
    got, expected, side = exported(run_dir, cli=cli)
    assert side["export"]["merged_adapters"] and side["input"]["block_size"] == 128
    assert got.shape == expected.shape == (2, 41, side["input"]["vocab_size"])
    assert np.abs(got - expected).max() < 1e-4


def test_a_tuned_gpt_run_exports_its_logits(tmp_path, gpt_run, sft_file):
    run_dir = tune(tmp_path, gpt_run, sft_file, "train.max_steps=10", "log.name=gpt")
    got, expected, side = exported(run_dir)
    assert side["input"]["block_size"] == 48  # the GPT's context, not the data's max_length
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
