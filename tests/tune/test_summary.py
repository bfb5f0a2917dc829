"""`zerotune summary`: parameter counts, MACs against their formulas, frozen parameters of a fine-tune, the Text tab."""

import subprocess
import sys

import pytest
import torch
from torch import nn

import zerotune
from zerotune.config import load_config
from zerotune.models import create_model
from zerotune.models.summary import summarize
from zerotune.pipeline.summary import model_summary

TINY = ["data.name=digits", "data.classes=[0,1,2]", "model.name=mlp", "model.hidden=[16]", "train.epochs=1",
        "train.threads=1", "log.progress=false", "log.images=false", "log.graph=false", "log.embeddings=false"]


def zt_process(*args, cwd=None):
    """The real console entry point in a process of its own."""
    return subprocess.run([sys.executable, "-m", "zerotune", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_macs_of_linear_conv_and_attention_follow_their_formulas():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=2),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    s = summarize(model, torch.zeros(1, 3, 16, 16))
    rows = {r.name: r for r in s.rows}
    assert rows["0"].macs == 8 * 8 * 8 * (3 * 3 * 3)  # C_out * H_out * W_out * (C_in / groups * k * k)
    assert rows["2"].macs == 8 * 6 * 6 * (4 * 3 * 3)
    assert rows["4"].macs == 8 * 6 * 6 * 5 and rows["1"].macs == 0
    assert rows["0"].output_shape == "(1, 8, 8, 8)" and s.macs == sum(r.macs for r in s.rows)
    assert s.parameters == sum(p.numel() for p in model.parameters())

    gpt = create_model("gpt", input_shape=(16,), num_outputs=40, n_layer=1, n_head=2, n_embd=32)
    rows = {r.name: r for r in summarize(gpt, torch.zeros(1, 16, dtype=torch.long)).rows}
    assert rows["features.blocks.0.attn"].macs == 2 * 16 * 16 * 32  # QK^T and AV, T x T x C each


@pytest.mark.parametrize("name,shape", [("cnn", (1, 8, 8)), ("mlp", (64,)), ("resnet", (3, 16, 16)), ("gpt", (16,))])
def test_parameters_add_up_to_the_models(name, shape):
    model = create_model(name, input_shape=shape, num_outputs=10)
    example = torch.zeros(1, *shape, dtype=torch.long if name == "gpt" else torch.float32)
    s = summarize(model, example)
    assert s.parameters == sum(p.numel() for p in model.parameters()) and s.frozen == 0
    assert "Parameters:" in s.table() and f"{s.macs:,}" in s.table()


def test_a_fine_tune_run_shows_its_frozen_parameters_and_the_run_has_the_text_tab(runs_dir, read_events, cli):
    parent = zerotune.train(load_config(None, TINY + [f"log.dir={runs_dir}", "log.name=parent"])).run_dir
    tags = read_events(parent).Tags()["tensors"]
    assert "model/summary/text_summary" in tags
    text = read_events(parent).Tensors("model/summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "head (Linear)" in text and "MACs for one example" in text

    child = zerotune.train(load_config(None, TINY + [f"log.dir={runs_dir}", "log.name=child", f"finetune.source={parent}",
                                                     "finetune.strategy=head", "finetune.baseline=false"])).run_dir
    s = model_summary(child)
    head = sum(r.trainable + r.frozen for r in s.rows if r.name.startswith("head"))
    assert s.trainable == head and s.frozen == s.parameters - head > 0
    proc = cli("summary", str(child))
    assert proc.returncode == 0 and f"frozen {s.frozen:,}" in proc.stdout
    child_text = read_events(child).Tensors("model/summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"frozen {s.frozen:,}" in child_text


def test_bad_input_is_one_line(tmp_path, cli):
    proc = zt_process("summary", "no-such-recipe.toml", cwd=tmp_path)  # the real process: one line, no traceback
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    (tmp_path / "run").mkdir()
    proc = cli("summary", str(tmp_path / "run"), "--set", "optim.lr=1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--set" in proc.stderr
    assert not proc.warnings  # in this process, recorded instead of printed on stderr
