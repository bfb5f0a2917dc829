"""A GPT trained end to end through zerotune.train: results, run directory, TensorBoard, resume."""

import statistics
import json
import math

import pytest
import torch

import zerotune
from zerotune.errors import UserError
from zerotune.runload.load import load_run, run_data
from zerotune.train.callbacks import Callback


def test_tiny_gpt_learns_the_synthetic_grammar(lm_run):
    metrics = json.loads((lm_run / "metrics.json").read_text())
    # 27 characters: uniform guessing is ln 27 = 3.3 nats. The grammar leaves about one choice of
    # five per word (about 0.2 nats per character), so a model that learned it sits far below that.
    assert metrics["val"]["loss"] < 0.5, metrics["val"]
    assert metrics["test"]["loss"] < 0.5, metrics["test"]
    assert metrics["val"]["perplexity"] == pytest.approx(math.exp(metrics["val"]["loss"]))
    assert metrics["val"]["tokens"] > 3000  # every validation token scored once, not a sample
    assert metrics["training"]["steps"] == 120


def test_run_directory_holds_the_tokenizer_and_rebuilds_alone(lm_run):
    from zerotune.data.lm_tokenizer import load_tokenizer_dir

    tok = load_tokenizer_dir(lm_run / "tokenizer")
    assert tok.kind == "char" and tok.decode(tok.encode("the cat sees the moon.")) == "the cat sees the moon."
    run = load_run(lm_run)
    assert run.meta.task == "lm" and run.meta.input_shape == [32] and run.meta.num_classes == tok.vocab_size
    data = run_data(run)
    # the rebuilt validation split is the one the run was measured on
    from zerotune.tasks.supervised import make_task

    task = make_task(run.meta, run.config.train, run.config.data)
    again = task.full_metrics(run.model, data.val)
    saved = json.loads((lm_run / "metrics.json").read_text())["val"]
    assert again["loss"] == pytest.approx(saved["loss"], rel=1e-5)


def test_tensorboard_has_loss_perplexity_throughput_mfu_attention_and_samples(lm_run, read_events):
    acc = read_events(lm_run)
    scalars = set(acc.Tags()["scalars"])
    for tag in ("train/loss", "train/perplexity", "train/lr", "perf/tokens_per_sec", "perf/mfu",
                "val/loss", "val/perplexity", "train/grad_norm"):
        assert tag in scalars, tag
    mfu = [e.value for e in acc.Scalars("perf/mfu")]
    # measured against the machine's own peak, timed once at the start: on a machine shared with other work
    # a step can run while the peak was measured slow, so single points may pass 1, the median may not
    assert all(v > 0 for v in mfu[5:]) and 0 < statistics.median(mfu[5:]) < 1
    tps = [e.value for e in acc.Scalars("perf/tokens_per_sec")]
    assert min(tps[5:]) > 0
    assert {"attention/layer_0", "attention/layer_1"} <= set(acc.Tags()["images"])
    image = acc.Images("attention/layer_1")[-1]
    assert image.encoded_image_string.startswith(b"\x89PNG") and image.width > 100
    texts = acc.Tags()["tensors"]
    assert "samples/generated/text_summary" in texts
    samples = acc.Tensors("samples/generated/text_summary")
    assert len(samples) == 6  # one per evaluation (views_min_seconds = 0)
    last = samples[-1].tensor_proto.string_val[0].decode()
    assert any(w in last for w in ("sees", "likes", "finds", "follows", "greets"))
    assert (lm_run / "projector").is_dir()  # token embeddings


def test_perplexity_in_tensorboard_is_exp_of_loss(lm_run, read_events):
    acc = read_events(lm_run)
    loss = {e.step: e.value for e in acc.Scalars("val/loss")}
    ppl = {e.step: e.value for e in acc.Scalars("val/perplexity")}
    assert loss.keys() == ppl.keys() and len(loss) == 6
    for step in loss:
        assert ppl[step] == pytest.approx(math.exp(loss[step]), rel=1e-5)


class Crash(Exception):
    pass


class CrashAt(Callback):
    """Stops the process abruptly after a given step (after that step's checkpoint, if any)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise Crash()


def test_resume_after_a_crash_gives_the_same_weights(tmp_path, corpus_file, lm_config):
    cache = tmp_path / "cache"
    dropout = "model.dropout=0.1"  # the dropout masks, drawn from the checkpointed generator, must repeat too
    whole = zerotune.train(lm_config(tmp_path, corpus_file, cache, "whole", dropout)).run_dir
    with pytest.raises(Crash):
        zerotune.train(lm_config(tmp_path, corpus_file, cache, "cut", dropout), callbacks=[CrashAt(27)])
    zerotune.train(None, resume=tmp_path / "cut")  # continues from step 25, mid-epoch
    a, b = load_run(whole, "last").model.state_dict(), load_run(tmp_path / "cut", "last").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_block_size_larger_than_the_corpus_is_refused_before_anything_is_written(tmp_path, lm_config):
    small = tmp_path / "small.txt"
    small.write_text("to be or not to be\n" * 3, encoding="utf-8")
    with pytest.raises(UserError, match="block_size"):
        zerotune.train(lm_config(tmp_path / "runs", small, tmp_path / "cache", "big", "data.block_size=64"))
    assert not (tmp_path / "runs" / "big").exists()


def test_learned_positions_and_bpe_train_too(tmp_path, corpus_file, lm_config):
    cfg = lm_config(tmp_path, corpus_file, tmp_path / "cache", "bpe", "data.tokenizer=bpe", "data.vocab_size=300",
                  "model.positions=learned", "train.epochs=1")
    result = zerotune.train(cfg)
    assert (result.run_dir / "tokenizer" / "tokenizer.json").is_file()
    assert math.isfinite(result.metrics["val"]["loss"]) and result.metrics["val"]["loss"] < math.log(300)


def test_no_test_split_gives_strict_json_metrics(tmp_path, corpus_file, lm_config):
    """nanoGPT's 90/10 split has no test part: its metrics are null, and metrics.json stays JSON (no NaN)."""
    run = zerotune.train(lm_config(tmp_path, corpus_file, tmp_path / "cache", "no-test", "data.test_fraction=0",
                                   "train.max_steps=3")).run_dir

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    metrics = json.loads((run / "metrics.json").read_text(), parse_constant=refuse)
    assert metrics["test"] == {"loss": None, "n": 0, "tokens": 0}
    assert metrics["val"]["loss"] > 0 and metrics["val"]["tokens"] > 0


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("32", torch.float32)])
def test_mfu_is_measured_against_the_peak_of_the_training_dtype(tmp_path, corpus_file, lm_config, monkeypatch,
                                                               precision, dtype):
    from zerotune.track import lm_board

    asked = []

    def peak(device, dtype=torch.float32, **kw):
        asked.append(dtype)
        return 1e12

    monkeypatch.setattr(lm_board, "matmul_peak_flops", peak)
    zerotune.train(lm_config(tmp_path, corpus_file, tmp_path / "cache", "mfu", "log.tensorboard=true",
                             f"train.precision={precision}", "train.max_steps=2"))
    assert asked == [dtype]
