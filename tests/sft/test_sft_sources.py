"""Instruction tuning of each causal LM architecture: trains, masks the prompt, evaluates, resumes."""

import json

import pytest

import zerotune
from zerotune.config import load_config
from zerotune.errors import UserError

BASE = ["data.name=sft", "data.max_length=32", "train.epochs=2", "train.batch_size=16", "train.threads=1",
        "optim.lr=3e-3", "sft.eval_prompts=4", "sft.max_new_tokens=4", "log.progress=false",
        "log.histograms_every=0", "log.layer_stats_every=0"]


def config(root, source, data, *extra):
    return load_config(None, [*BASE, f"data.path={data}", f"finetune.source={source}", f"log.dir={root}", *extra])


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_lora_tunes_each_architecture(tmp_path, tiny_lms, sft_file, arch):
    result = zerotune.train(config(tmp_path, tiny_lms[arch], sft_file, "finetune.strategy=lora", "log.name=r"))
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["val"]["loss"] > 0 and 0 <= metrics["val"]["exact_match"] <= 1
    ft = metrics["finetune"]
    assert ft["strategy"] == "lora" and 0 < ft["trainable_percent"] < 50  # adapters only, head frozen
    ev = zerotune.evaluate(result.run_dir, "val")
    assert ev["exact_match"] == pytest.approx(metrics["val"]["exact_match"])
