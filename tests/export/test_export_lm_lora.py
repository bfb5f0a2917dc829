"""A GPT run tuned with LoRA: exported to ONNX with its adapters merged (parity checked), and served."""

import random

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import torch

from zerotune.data.lm_tokenizer import load_tokenizer_dir
from zerotune.export import export_run
from zerotune.lm.sampling import complete
from zerotune.pipeline.finetune import finetune
from zerotune.run.files import RunDir
from zerotune.runload.load import load_run
from zerotune.serve import create_app, load_served_model, running_server


def test_lora_gpt_run_exports_merged_logits_and_serves(lm_run, tmp_path):
    rng = random.Random(5)
    text = tmp_path / "royal.txt"
    text.write_text("\n".join(f"{rng.choice(['the king', 'our queen'])} greets the sea." for _ in range(400)) + "\n")
    run_dir = finetune(None, source=str(lm_run), strategy="lora", overrides=[
        "data.name=corpus", f"data.path={text}", f"data.cache_dir={tmp_path / 'cache'}", "data.block_size=32",
        "data.windows_per_epoch=160", "train.epochs=1", "train.batch_size=32", "optim.name=adamw", "optim.lr=3e-3",
        "log.progress=false", "log.tensorboard=false", f"log.dir={tmp_path}", "log.name=lora"]).run_dir
    run = load_run(run_dir)
    assert any("lora" in n for n, _ in run.model.named_parameters())

    result = export_run(run_dir, out=tmp_path / "lora.onnx")
    (parity,) = result.parity
    assert parity.ok and parity.max_abs_diff <= 1e-4
    graph = onnx.load(str(result.path)).graph
    assert not any("lora" in t.name for t in graph.initializer)  # merged into plain weights
    x = np.random.default_rng(0).integers(0, run.model.vocab_size, size=(2, 20))
    (got,) = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"]).run(None, {"input_ids": x})
    with torch.no_grad():
        assert np.abs(got - run.model(torch.from_numpy(x)).numpy()).max() < 1e-4

    tokenizer = load_tokenizer_dir(RunDir(run_dir).tokenizer)
    expected = complete(run.model, tokenizer, "our queen", max_new_tokens=12, temperature=0)
    with running_server(create_app(load_served_model(run_dir))) as url:
        r = httpx.post(f"{url}/v1/completions", trust_env=False, timeout=60,
                       json={"model": "lora", "prompt": "our queen", "max_tokens": 12, "temperature": 0})
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == expected
