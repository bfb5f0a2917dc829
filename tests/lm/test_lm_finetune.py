"""Continuing a GPT run on new text through the fine-tuning machinery (frozen blocks, LoRA)."""

import json
import random

import pytest
import torch

from zerotune.errors import UserError
from zerotune.pipeline.finetune import finetune
from zerotune.runload.load import load_run


@pytest.fixture(scope="module")
def new_text(tmp_path_factory):
    """Text in the same alphabet with a narrower grammar: a new "play" for the model."""
    rng = random.Random(5)
    path = tmp_path_factory.mktemp("new-text") / "royal.txt"
    lines = [f"{rng.choice(['the king', 'our queen'])} {rng.choice(['greets', 'follows'])} the sea." for _ in range(600)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _continue(lm_run, new_text, tmp_path, strategy, *extra):
    return finetune(None, source=str(lm_run), strategy=strategy, overrides=[
        "data.name=corpus", f"data.path={new_text}", f"data.cache_dir={tmp_path / 'cache'}", "data.block_size=32",
        "data.windows_per_epoch=320", "train.epochs=2", "train.batch_size=32", "optim.name=adamw",
        "optim.lr=3e-3", "log.progress=false", "log.tensorboard=false", f"log.dir={tmp_path}",
        f"log.name={strategy}", *extra])


def test_lora_continuation_learns_the_new_text_and_keeps_the_base_weights(lm_run, new_text, tmp_path):
    result = _continue(lm_run, new_text, tmp_path, "lora")
    ft = result.metrics["finetune"]
    assert ft["after"]["val/loss"] < 0.6 * ft["before"]["val/loss"]
    # the parent's tokenizer, copied, so the new run stands alone
    assert json.loads((result.run_dir / "tokenizer" / "char_vocab.json").read_text()) == \
        json.loads((lm_run / "tokenizer" / "char_vocab.json").read_text())
    parent, child = load_run(lm_run).model.state_dict(), load_run(result.run_dir).model.state_dict()
    block_weights = [k for k in parent if ".blocks." in k and k.endswith("qkv.weight")]
    assert block_weights
    for k in block_weights:  # LoRA leaves the base matrices alone and learns beside them
        base = k.replace("qkv.weight", "qkv.base.weight")
        assert torch.equal(parent[k], child[base if base in child else k])
    assert any("lora" in k for k in child)


def test_partial_continuation_freezes_the_first_block(lm_run, new_text, tmp_path):
    result = _continue(lm_run, new_text, tmp_path, "partial", "finetune.train_blocks=1")
    parent, child = load_run(lm_run).model.state_dict(), load_run(result.run_dir).model.state_dict()
    frozen = [k for k in parent if k.startswith("features.blocks.0.")]
    trained = [k for k in parent if k.startswith("features.blocks.1.")]
    assert frozen and all(torch.equal(parent[k], child[k]) for k in frozen)
    assert any(not torch.equal(parent[k], child[k]) for k in trained)
    ft = result.metrics["finetune"]
    assert ft["after"]["val/loss"] < ft["before"]["val/loss"]


def test_new_text_with_characters_the_parent_never_saw(lm_run, tmp_path):
    odd = tmp_path / "odd.txt"
    odd.write_text("Zebras quietly jump over 42 wolves!\n" * 200, encoding="utf-8")
    with pytest.raises(UserError, match="vocabulary"):
        _continue(lm_run, odd, tmp_path, "full")
