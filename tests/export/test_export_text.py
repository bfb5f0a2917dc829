"""Exporting token-id runs: a text classifier (tiny BERT) to ONNX and TorchScript with free batch and
sequence axes, parity on real tokenised text, int8, the comparison table and LoRA merging; and a
GPT run, whose logits go through the same signature path."""

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from zerotune import load_run
from zerotune.data.bundle import DataMeta
from zerotune.errors import UserError
from zerotune.export import ExportOptions, compare_run, export_run, print_comparison
from zerotune.cli.export import main as export_main
from zerotune.export.runtime import onnx_runner
from zerotune.export.sidecar import sha256
from zerotune.export.signature import LMSignature, TextSignature, signature_for
from zerotune.runload.load import run_data

# Texts from 1 to 40 words: longer and shorter than anything in the training data (2-6 tokens).
WORDS = ["the", "food", "was", "good", "very", "bad", "phone", "service", "not", "great", "it", "is"]
TEXTS = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(n)) for i, n in enumerate([1, 3, 40, 9, 17, 2, 25, 5])]


def exported_tokenizer(result):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(result.path.parent / (result.path.name + ".tokenizer")),
                                         local_files_only=True)


def test_onnx_file_sidecar_and_tokenizer(text_run, text_exports):
    r = text_exports["onnx"]
    side = json.loads(r.sidecar.read_text())
    assert side["input"]["kind"] == "text"
    assert side["input"]["tensors"] == [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"]},
                                        {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "sequence"]}]
    assert side["output"]["shape"] == ["batch", 2] and side["meta"]["source"] == "text"
    assert side["export"]["dynamic_axes"] == {"input_ids": {"0": "batch", "1": "sequence"},
                                              "attention_mask": {"0": "batch", "1": "sequence"}}
    tok = side["input"]["tokenizer"]
    assert tok["path"] == "model.onnx.tokenizer" and tok["truncation"] is True
    assert tok["max_length"] == 64  # data.max_length 128, capped at the tiny BERT's 64 positions
    tok_dir = r.path.parent / tok["path"]
    assert tok["files"] == {f.name: sha256(f.read_bytes()) for f in tok_dir.iterdir()}
    (p,) = side["parity"]
    assert p["inputs"] == "test split" and p["n"] == 100 and p["ok"] and p["max_abs_diff"] <= 1e-4
    assert p["agreement"] == 1.0
    names = sorted(f.name for f in r.path.parent.iterdir())
    assert names == ["model.onnx", "model.onnx.json", "model.onnx.tokenizer", "model.pt", "model.pt.json",
                     "model.pt.tokenizer"]  # no temporary files left
    model = onnx.load(str(r.path))
    onnx.checker.check_model(model)
    assert not any("stack_trace" in p.key for n in model.graph.node for p in n.metadata_props)


@pytest.mark.parametrize("padding", ["longest", "max_length"])
def test_onnxruntime_on_tokenised_text_any_batch_and_length(text_exports, text_ref, padding):
    """The exported tokenizer's own output, as any client would make it, fed straight to onnxruntime."""
    r = text_exports["onnx"]
    sess = ort.InferenceSession(str(r.path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in sess.get_inputs()] == [("input_ids", "tensor(int64)"),
                                                             ("attention_mask", "tensor(int64)")]
    assert all(isinstance(d, str) for i in sess.get_inputs() for d in i.shape)  # batch and sequence free
    tok = exported_tokenizer(r)
    want = text_ref.logits_of(TEXTS)
    worst = 0.0
    for lo, hi in [(0, 1), (1, 4), (0, len(TEXTS))]:
        enc = tok(TEXTS[lo:hi], truncation=True, max_length=64, padding=padding, return_tensors="np")
        got = sess.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                              "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
        assert got.shape == (hi - lo, 2)
        worst = max(worst, float(np.abs(got - want[lo:hi]).max()))
    assert worst < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_parity_any_batch_and_length(text_exports, text_ref):
    r = text_exports["torchscript"]
    assert json.loads(r.sidecar.read_text())["parity"][0]["max_abs_diff"] <= 1e-4
    scripted = torch.jit.load(str(r.path))
    tok = exported_tokenizer(r)
    want = text_ref.logits_of(TEXTS)
    for lo, hi in [(0, 1), (2, 5), (0, len(TEXTS))]:
        enc = tok(TEXTS[lo:hi], truncation=True, max_length=64, padding=True, return_tensors="pt")
        with torch.no_grad():
            got = scripted(enc["input_ids"].long(), enc["attention_mask"].long()).numpy()
        assert np.abs(got - want[lo:hi]).max() < 1e-4


def test_int8_variants_and_compare_with_accuracy(text_run, capsys):
    variants = [ExportOptions("onnx"), ExportOptions("onnx", int8="dynamic"), ExportOptions("torchscript"),
                ExportOptions("torchscript", int8="dynamic"), ExportOptions("onnx", int8="static"),
                ExportOptions("torchscript", int8="static")]
    c = compare_run(text_run, variants, iters=2, threads=1)
    assert c.metric_name == "accuracy"
    rows = {r.variant: r for r in c.rows}
    expected = json.loads((text_run / "metrics.json").read_text())["test"]["accuracy"]
    assert rows["pytorch fp32 (eager)"].metric == pytest.approx(expected, abs=1e-9)
    for name in ("onnx", "onnx int8-dynamic", "torchscript", "torchscript int8-dynamic"):
        r = rows[name]
        assert r.note == "" and r.bytes > 0 and 0 < r.p50_b1 <= r.p95_b1 and 0 < r.p50_b32 <= r.p95_b32
        assert r.metric >= expected - 0.02
    assert rows["onnx int8-dynamic"].bytes < rows["onnx"].bytes
    assert rows["torchscript int8-dynamic"].bytes < rows["torchscript"].bytes
    for name in ("onnx int8-static", "torchscript int8-static"):  # measured, or a row saying why not
        assert rows[name].metric is not None or "static int8" in rows[name].note
    print_comparison(c)
    assert "accuracy" in capsys.readouterr().out


def test_cli_int8_export_writes_model_sidecar_and_tokenizer(text_run, tmp_path, capsys):
    assert export_main([str(text_run), "--format", "torchscript", "--int8", "dynamic", "--out", str(tmp_path),
                        "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fp32, in_memory = out["parity"]
    assert fp32["agreement"] >= 0.97 and in_memory["max_abs_diff"] <= 1e-4
    assert (tmp_path / "model-int8-dynamic.pt.tokenizer" / "tokenizer_config.json").is_file()
    # The tokenizer directory is one of the export's files: it too is kept unless --force.
    (tmp_path / "model-int8-dynamic.pt").unlink()
    (tmp_path / "model-int8-dynamic.pt.json").unlink()
    with pytest.raises(UserError, match="model-int8-dynamic.pt.tokenizer already exists"):
        export_run(text_run, ExportOptions("torchscript", int8="dynamic"), out=tmp_path)


def test_parity_on_random_tokens_when_the_text_file_is_gone(text_run, tmp_path):
    run = shutil.copytree(text_run, tmp_path / "moved", ignore=shutil.ignore_patterns("export"))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["path"] = str(tmp_path / "gone.tsv")
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    r = export_run(run, ExportOptions("torchscript"))
    (p,) = r.parity
    assert p.inputs == "random token" and p.n == 64 and p.ok and p.max_abs_diff <= 1e-4


def test_lora_text_run_is_merged_before_export(tiny_bert, sentiment, tmp_path):
    from zerotune.pipeline.finetune import finetune

    train, test = sentiment
    result = finetune(None, source=str(tiny_bert), strategy="lora", overrides=[
        "data.name=text", f"data.path={train}", f"data.test_path={test}", "optim.lr=5e-3", "train.epochs=1",
        "train.batch_size=32", "train.threads=1", "finetune.lora_rank=4", "finetune.baseline=false",
        "log.progress=false", "log.graph=false", "log.embeddings=false", "log.tensorboard=false", f"log.dir={tmp_path}",
        "log.name=lora"])
    run = load_run(result.run_dir)
    assert any("lora_" in n for n, _ in run.model.named_parameters())  # served as trained: peft adapters
    r = export_run(result.run_dir, ExportOptions("onnx"), out=tmp_path / "lora.onnx")
    model = onnx.load(str(r.path))
    assert not any("lora" in i.name.lower() for i in model.graph.initializer)
    assert not any("lora" in n.name.lower() for n in model.graph.node)
    assert r.parity[0].max_abs_diff <= 1e-4  # vs the merged PyTorch model on the test split
    x = run_data(run).test.x  # and the run's own model, adapters unmerged, agrees too
    with torch.no_grad():
        want = run.model(x).numpy()
    got = onnx_runner(r.path.read_bytes(), signature=signature_for(run.meta, run.model, 128))(x.numpy())
    assert np.abs(got - want).max() < 1e-4


# -- a decoder-only language model (the tiny GPT of tests/lm) through the same signature path --

@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_gpt_run_exports_logits_with_free_batch_and_sequence(lm_run, tmp_path):
    run = load_run(lm_run)
    sig = signature_for(run.meta, run.model)
    assert isinstance(sig, LMSignature) and sig.block_size == 32 and sig.input_names == ["input_ids"]
    onnx_file = export_run(lm_run, ExportOptions("onnx"), out=tmp_path)
    ts_file = export_run(lm_run, ExportOptions("torchscript"), out=tmp_path)
    side = json.loads(onnx_file.sidecar.read_text())
    vocab = run.meta.num_classes
    assert side["input"]["kind"] == "lm" and side["output"]["shape"] == ["batch", "sequence", vocab]
    (p,) = side["parity"]
    assert p["inputs"] == "test split" and p["ok"] and p["max_abs_diff"] <= 1e-4
    assert not (tmp_path / "model.onnx.tokenizer").exists()
    sess = ort.InferenceSession(str(onnx_file.path), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(ts_file.path))
    x = np.random.default_rng(0).integers(0, vocab, size=(5, 32))
    for b, t in [(1, 1), (3, 7), (5, 32)]:
        with torch.no_grad():
            want = run.model(torch.from_numpy(x[:b, :t])).numpy()
            got_ts = scripted(torch.from_numpy(x[:b, :t])).numpy()
        got = sess.run(None, {"input_ids": x[:b, :t]})[0]
        assert got.shape == (b, t, vocab)
        assert np.abs(got - want).max() < 1e-4 and np.abs(got_ts - want).max() < 1e-4
    with pytest.raises(UserError, match="serve its run directory"):
        from zerotune.serve import load_served_model

        load_served_model(onnx_file.path)


def test_text_signature_trims_pads_and_joins():
    sig = TextSignature(num_outputs=2, vocab_size=30, max_length=16)
    x = np.array([[2, 5, 3, -1, -1, -1], [2, 6, 7, 3, -1, -1]])
    feeds = sig.feeds(x)
    assert feeds["input_ids"].tolist() == [[2, 5, 3, 0], [2, 6, 7, 3]]
    assert feeds["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    joined = sig.concat([x[:1, :3], np.array([[2, 8, 8, 8, 3]])])
    assert joined.tolist() == [[2, 5, 3, -1, -1], [2, 8, 8, 8, 3]]
    noise = sig.noise(20)
    assert noise.min() >= -1 and noise.max() < 30 and ((noise != -1).sum(1) >= 2).all()
    assert signature_for(DataMeta(source="digits", task="classification", input_shape=[1, 8, 8],
                                  num_classes=10)).kind == "array"
