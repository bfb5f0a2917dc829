"""Instruction tuning of a zerotune GPT run: LoRA and full, exact resume, gradient checkpointing, generate."""

import pytest
import torch

import zerotune
from zerotune.config import load_config
from zerotune.train.checkpoint import read_weights

BASE = ["data.name=sft", "data.max_length=48", "train.epochs=3", "train.batch_size=16", "train.threads=1",
        "train.deterministic=true", "optim.lr=3e-3", "sft.eval_prompts=4", "sft.max_new_tokens=4",
        "log.progress=false", "log.tensorboard=false", "finetune.baseline=false"]


def run(root, gpt_run, data, name, *extra, resume_steps=None):
    cfg = load_config(None, [*BASE, f"data.path={data}", f"finetune.source={gpt_run}", f"log.dir={root}",
                             f"log.name={name}", *extra])
    return zerotune.train(cfg)


@pytest.mark.parametrize("strategy", ["lora", "full"])
def test_resume_is_exact(tmp_path, gpt_run, sft_file, strategy):
    whole = run(tmp_path, gpt_run, sft_file, "whole", f"finetune.strategy={strategy}", "train.max_steps=10")
    half = run(tmp_path, gpt_run, sft_file, "half", f"finetune.strategy={strategy}", "train.max_steps=5",
               "train.checkpoint_every_steps=5")
    zerotune.train(None, resume=half.run_dir, resume_overrides=["train.max_steps=10"])
    a = read_weights(whole.run_dir / "checkpoints" / "last")
    b = read_weights(half.run_dir / "checkpoints" / "last")
    assert a.keys() == b.keys() and any("lora_" in k for k in a) == (strategy == "lora")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_grad_checkpointing_gives_the_same_gradients(tmp_path, gpt_run, sft_file):
    plain = run(tmp_path, gpt_run, sft_file, "plain", "finetune.strategy=full", "train.max_steps=3")
    ckpt = run(tmp_path, gpt_run, sft_file, "ckpt", "finetune.strategy=full", "train.max_steps=3",
               "train.grad_checkpointing=true")
    a = read_weights(plain.run_dir / "checkpoints" / "last")
    b = read_weights(ckpt.run_dir / "checkpoints" / "last")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_generate_answers_with_the_chat_template(tmp_path, gpt_run, sft_file, cli):
    result = run(tmp_path, gpt_run, sft_file, "gen", "finetune.strategy=lora", "train.max_steps=20",
                 "train.precision=bf16")
    done = cli("generate", result.run_dir, "--prompt", "What is 2+3?", "--temperature", "0", "--max-tokens", "4",
               "--no-stream")
    assert done.returncode == 0, done.stderr
    answer = done.stdout
    assert "What is" not in answer and "\n" not in answer.rstrip("\n")  # the answer alone, ended by its newline
    done = cli("eval", result.run_dir, "--split", "val", "--json")
    assert done.returncode == 0 and '"exact_match"' in done.stdout, done.stderr
    done = cli("eval", result.run_dir)
    assert done.returncode == 0 and "exact match" in done.stdout, done.stderr
    from zerotune.pipeline.finetune import merge_lora

    merged = zerotune.evaluate(merge_lora(result.run_dir), "val")  # the merged copy keeps the GPT's tokenizer
    assert merged["exact_match"] == zerotune.evaluate(result.run_dir, "val")["exact_match"]


def test_sft_views_leave_the_global_generators_alone(tmp_path, gpt_run, sft_file, moved):
    run(tmp_path, gpt_run, sft_file, "views", "finetune.strategy=lora", "train.epochs=2", "model.dropout=0.1",
        "log.tensorboard=true", "log.views_min_seconds=0", "sft.eval_prompts=2", "finetune.baseline=true")
    assert moved == []
