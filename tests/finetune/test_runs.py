"""Fine-tune runs end to end: frozen weights stay bit-identical, gradual unfreezing resumes with the
same frozen set, LoRA merges and saves, a transformer run stands alone, TensorBoard shows it all."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

import zerotune
from zerotune.pipeline.train import evaluate
from zerotune.errors import UserError
from zerotune.pipeline.finetune import finetune, merge_lora, save_adapters
from zerotune.train.callbacks import Callback


def _weights(run_dir, which="last"):
    return load_file(str(run_dir / "checkpoints" / which / "model.safetensors"))


def _scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_head_only_keeps_every_other_weight_bit_identical(parent_run, runs_dir, target):
    result = finetune(None, source=str(parent_run), strategy="head",
                      overrides=target + [f"log.dir={runs_dir}", "log.name=head"])
    ft = result.metrics["finetune"]
    parent, child = _weights(parent_run, "best"), _weights(result.run_dir)
    assert ft["head"] == "new" and ft["trainable"] == 32 * 5 + 5
    for name, tensor in parent.items():
        if not name.startswith("head."):  # batch-norm running statistics included
            assert torch.equal(child[name], tensor), name
    assert not torch.equal(child["head.weight"][:, :5], parent["head.weight"][:, :5])
    assert ft["before"]["test/accuracy"] < 0.4 and ft["after"]["test/accuracy"] >= 0.6
    assert ft["probe"]["test/accuracy"] >= 0.6
    # the run stands alone: eval rebuilds model and data (with the parent's normalisation)
    assert evaluate(result.run_dir)["accuracy"] == result.metrics["test"]["accuracy"]
    trainable = _scalars(result.run_dir, "finetune/params_trainable")
    assert trainable and all(v == 165 for _, v in trainable)
    frozen = dict(_scalars(result.run_dir, "finetune/params_frozen"))
    assert set(frozen.values()) == {ft["parameters"] - 165}
    assert dict(_scalars(result.run_dir, "compare/after/test/accuracy"))[result.steps] == pytest.approx(
        ft["after"]["test/accuracy"])
    assert _scalars(result.run_dir, "lr/head")
    # The comparison and the doctor's findings go onto the end of the training's own event file.
    assert len(list(result.run_dir.glob("events.out.tfevents.*"))) == 1


def test_same_classes_keep_the_head(parent_run, runs_dir, target):
    result = finetune(None, source=str(parent_run), strategy="partial",
                      overrides=target + ["data.classes=[0,1,2,3,4]", "finetune.train_blocks=1", "train.epochs=1",
                                          f"log.dir={runs_dir}", "log.tensorboard=false"])
    ft = result.metrics["finetune"]
    assert ft["head"] == "kept" and ft["before"]["test/accuracy"] >= 0.9


class Recorder(Callback):
    """Records the frozen set at every step; raises at `stop_at` to simulate a crash."""

    def __init__(self, stop_at=None):
        self.stop_at, self.frozen = stop_at, {}

    def on_step_end(self, state):
        self.frozen[state.step] = frozenset(n for n, p in state.model.named_parameters() if not p.requires_grad)
        if state.step == self.stop_at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("strategy, extra", [
    ("gradual", ["finetune.unfreeze_every=2", "finetune.lr_decay=0.5"]),
    ("full", ["finetune.lr_decay=0.5"]), ("head", []), ("partial", ["finetune.freeze_layers=[0]"]),
    ("lora", ["finetune.lora_rank=2"]),
])
def test_every_strategy_resumes_to_identical_weights_and_frozen_sets(parent_run, runs_dir, target, strategy, extra):
    settings = target + extra + ["train.epochs=8", "train.checkpoint_every_steps=2", "log.tensorboard=false",
                                 "finetune.baseline=false", f"log.dir={runs_dir}"]
    ref_rec = Recorder()
    reference = finetune(None, source=str(parent_run), strategy=strategy, overrides=settings + ["log.name=ref"],
                         callbacks=[ref_rec])
    crashed = Recorder(stop_at=17)  # 5 steps per epoch: mid epoch 3, after the checkpoint at step 16
    with pytest.raises(KeyboardInterrupt):
        finetune(None, source=str(parent_run), strategy=strategy, overrides=settings + ["log.name=crash"],
                 callbacks=[crashed])
    run_dir = runs_dir / "crash"
    resumed_rec = Recorder()
    resumed = zerotune.train(None, resume=run_dir, callbacks=[resumed_rec])
    assert min(resumed_rec.frozen) == 17  # steps 17 on are redone from the checkpoint at 16
    assert resumed_rec.frozen[17] == crashed.frozen[17] == ref_rec.frozen[17]
    assert resumed_rec.frozen == {s: f for s, f in ref_rec.frozen.items() if s >= 17}
    assert resumed.steps == reference.steps == 40
    ref_w, res_w = _weights(reference.run_dir), _weights(run_dir)
    for k in ref_w:
        assert torch.equal(ref_w[k], res_w[k]), k
    if strategy == "gradual":  # one more block every 2 epochs, all trainable by epoch 6
        sizes = [len(f) for _, f in sorted(ref_rec.frozen.items())]
        assert sizes[0] > len(ref_rec.frozen[17]) > sizes[-1] == 0 and sorted(sizes, reverse=True) == sizes


def test_lora_on_our_cnn_merges_and_saves_adapters(parent_run, runs_dir, target):
    result = finetune(None, source=str(parent_run), strategy="lora",
                      overrides=target + ["finetune.lora_rank=2", "finetune.baseline=false", f"log.dir={runs_dir}",
                                          "log.name=lora", "log.tensorboard=false"])
    ft = result.metrics["finetune"]
    # rank 2: A (2, in, 3, 3) and B (out, 2) per conv, A (2, in) and B (out, 2) for the dense layer, plus the head
    assert ft["trainable"] == (2 * 9 + 8 * 2) + (2 * 8 * 9 + 16 * 2) + (2 * 256 + 32 * 2) + 165
    base = _weights(parent_run, "best")
    tuned = _weights(result.run_dir)
    assert torch.equal(tuned["features.0.base.weight"], base["features.0.weight"])
    merged = merge_lora(result.run_dir)
    assert merged.name == "lora-merged"
    assert "lora_" not in " ".join(_weights(merged, "best"))
    a, b = evaluate(result.run_dir), evaluate(merged)
    assert a["accuracy"] == b["accuracy"] and a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    out = save_adapters(result.run_dir)
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert set(saved) == {n for n in tuned if "lora_" in n}
    assert json.loads((out / "labels.json").read_text()) == ["5", "6", "7", "8", "9"]
    with pytest.raises(UserError, match="not a LoRA fine-tune"):
        merge_lora(merged)


def test_transformer_lora_run_stands_alone(tiny_bert, sentiment, runs_dir, copy_of):
    source = copy_of(tiny_bert, "pretrained")
    train, test = sentiment
    result = finetune(None, source=str(source), strategy="lora", overrides=[
        "data.name=text", f"data.path={train}", f"data.test_path={test}", "optim.lr=5e-3", "train.epochs=12",
        "train.batch_size=16", "finetune.lora_rank=4", "finetune.lora_targets=[query, value, dense]",
        "log.progress=false", "log.graph=false", "log.embeddings=false", f"log.dir={runs_dir}", "log.name=bert"])
    ft = result.metrics["finetune"]
    assert ft["trainable"] < 0.5 * ft["parameters"]
    assert ft["after"]["test/accuracy"] >= 0.9 > ft["before"]["test/accuracy"]
    assert (result.run_dir / "hf" / "config.json").is_file() and (result.run_dir / "hf" / "tokenizer_config.json").is_file()
    shutil.rmtree(source)  # eval needs nothing but the run directory
    assert evaluate(result.run_dir)["accuracy"] == result.metrics["test"]["accuracy"]
    merged = merge_lora(result.run_dir)
    assert evaluate(merged)["accuracy"] == result.metrics["test"]["accuracy"]
    out = save_adapters(result.run_dir)
    assert {"adapter_config.json", "adapter_model.safetensors", "head.safetensors"} <= {p.name for p in out.iterdir()}
    assert _scalars(result.run_dir, "finetune/trainable_percent")[0][1] == pytest.approx(ft["trainable_percent"], rel=1e-4)


def test_finetune_from_a_transformer_needs_text_data(tiny_bert, runs_dir):
    with pytest.raises(UserError, match="a pretrained transformer reads text: set data.name = 'text'"):
        finetune(None, source=str(tiny_bert), overrides=[f"log.dir={runs_dir}"])
    assert not runs_dir.exists()


def test_cli_subcommand(parent_run, runs_dir, target, capsys):
    import argparse

    from zerotune.cli.finetune import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    sets = [a for s in target + ["train.epochs=2", "log.tensorboard=false"] for a in ("--set", s)]
    args = parser.parse_args(["finetune", "--from", str(parent_run), "--strategy", "partial", "--set",
                              "finetune.train_blocks=1", "--runs-dir", str(runs_dir), "--name", "cli", *sets])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"run: {runs_dir / 'cli'}" in out and "strategy partial:" in out and "test/accuracy: before" in out
    bad = parser.parse_args(["finetune", "--from", str(parent_run), "--strategy", "partial", "--set",
                             "finetune.freeze_patterns=['*']", "--runs-dir", str(runs_dir), "--name", "none", *sets])
    with pytest.raises(UserError, match="nothing is left to train"):
        bad.func(bad)
    assert not (runs_dir / "none").exists()  # refused before the run directory was made
