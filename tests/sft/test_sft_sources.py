"""Instruction tuning of each causal LM architecture: trains, masks the prompt, evaluates, resumes."""

import json

import pytest
import torch

import zerotune
from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.train.callbacks import Callback

BASE = ["data.name=sft", "data.max_length=32", "train.epochs=2", "train.batch_size=16", "train.threads=1",
        "optim.lr=3e-3", "sft.eval_prompts=4", "sft.max_new_tokens=3", "finetune.baseline=false", "log.progress=false",
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


def test_board_shows_answers_tokens_per_second_and_trainable_share(tmp_path, tiny_lms, sft_file, read_events):
    result = zerotune.train(config(tmp_path, tiny_lms["llama"], sft_file, "finetune.strategy=lora",
                                   "sft.board_prompts=3", "log.views_min_seconds=0", "log.name=tb"))
    events = read_events(result.run_dir)
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/perplexity", "val/exact_match", "perf/tokens_per_sec",
            "finetune/trainable_percent"} <= scalars
    texts = [e for e in events.Tensors("sft/answers/text_summary")]
    assert len(texts) == 2  # one table per evaluation
    table = texts[-1].tensor_proto.string_val[0].decode()
    assert "base model" in table and table.count("\n") == 1 + 3  # header, rule, 3 rows


def test_full_partial_and_grad_checkpointing_on_a_transformers_model(tmp_path, tiny_lms, sft_file):
    full = zerotune.train(config(tmp_path, tiny_lms["qwen2"], sft_file, "finetune.strategy=full", "log.name=full",
                                 "log.tensorboard=false", "train.grad_checkpointing=true"))
    assert full.metrics["finetune"]["trainable_percent"] == 100
    part = zerotune.train(config(tmp_path, tiny_lms["qwen2"], sft_file, "finetune.strategy=partial",
                                 "finetune.train_blocks=1", "log.name=part", "log.tensorboard=false"))
    groups = part.metrics["finetune"]["groups"]
    assert groups == ["embeddings", "layers.0", "layers.1", "head"]
    assert 0 < part.metrics["finetune"]["trainable_percent"] < 100


def test_merged_and_saved_adapters(tmp_path, tiny_lms, sft_file):
    from zerotune.pipeline.finetune import merge_lora, save_adapters

    result = zerotune.train(config(tmp_path, tiny_lms["gpt2"], sft_file, "finetune.strategy=lora", "log.name=l",
                                   "log.tensorboard=false"))
    merged = merge_lora(result.run_dir)
    a, b = zerotune.evaluate(result.run_dir, "val"), zerotune.evaluate(merged, "val")
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-4) and b["exact_match"] == a["exact_match"]
    out = save_adapters(result.run_dir)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()


def test_a_source_that_is_no_causal_lm_is_refused(tmp_path, sft_file):
    with pytest.raises(UserError, match="finetune.source"):
        zerotune.train(load_config(None, [*BASE, f"data.path={sft_file}", f"log.dir={tmp_path}"]))


def test_grad_checkpointing_is_switched_on_in_the_transformers_model(tiny_lms):
    from zerotune.finetune.sft import enable_grad_checkpointing
    from zerotune.models import create_model

    model = create_model("hf_lm", input_shape=(16,), num_outputs=295, path=str(tiny_lms["llama"]))
    enable_grad_checkpointing(model)
    hf = model.hf_model
    assert getattr(hf, "is_activation_checkpointing", None) or hf.is_gradient_checkpointing


def test_generate_formats_the_prompt_with_the_tokenizers_template(tmp_path, tiny_lms, sft_file, monkeypatch):
    from zerotune.data import chat
    from zerotune.pipeline.generate import generate

    result = zerotune.train(config(tmp_path, tiny_lms["qwen2"], sft_file, "finetune.strategy=lora", "log.name=g",
                                   "log.tensorboard=false", "train.epochs=1"))
    seen = []
    monkeypatch.setattr(chat.ChatFormat, "prompt_text",
                        lambda self, m: seen.append(m) or "<|user|>What is 1+2?\n<|assistant|>")
    text = "".join(generate(result.run_dir, "What is 1+2?", max_new_tokens=3, temperature=0))
    assert seen == [[{"role": "user", "content": "What is 1+2?"}]] and isinstance(text, str)
    with pytest.raises(UserError, match="empty"):
        generate(result.run_dir, "", max_new_tokens=3)


def test_answer_regex_compares_what_it_extracts(tiny_lms):
    from zerotune.config import SFTConfig
    from zerotune.data.bundle import DataMeta
    from zerotune.tasks.sft import SFTTask

    meta = DataMeta(source="sft", task="sft", input_shape=[8], num_classes=10)
    plain = SFTTask(meta, None, SFTConfig())
    assert plain.matches(" 85 ", "85") and not plain.matches("It is 85.", "85")
    regex = SFTTask(meta, None, SFTConfig(answer_regex=r"(-?\d+)"))
    assert regex.matches("It is 85.", "85") and not regex.matches("It is 84.", "85") and not regex.matches("no", "85")
    with pytest.raises(UserError, match="answer_regex"):
        load_config(None, ["sft.answer_regex=(unclosed"])


@pytest.mark.parametrize("strategy", ["lora", "full", "partial"])
def test_resume_of_a_transformers_model_is_exact(tmp_path, tiny_lms, sft_file, strategy):
    from zerotune.run.files import RunDir
    from zerotune.train.checkpoint import read_weights

    extra = [f"finetune.strategy={strategy}", "train.deterministic=true", "log.tensorboard=false", "train.epochs=3",
             *(["finetune.train_blocks=1"] if strategy == "partial" else [])]
    whole = zerotune.train(config(tmp_path, tiny_lms["llama"], sft_file, *extra, "train.max_steps=6", "log.name=whole"))
    half = zerotune.train(config(tmp_path, tiny_lms["llama"], sft_file, *extra, "train.max_steps=3",
                                 "train.checkpoint_every_steps=3", "log.name=half"))
    steps = []
    zerotune.train(None, resume=half.run_dir, resume_overrides=["train.max_steps=6"], callbacks=[_StepLog(steps)])
    assert steps == [4, 5, 6]  # continued from the checkpoint, not trained again from step 0
    a = read_weights(RunDir(whole.run_dir).checkpoint("last"))
    b = read_weights(RunDir(half.run_dir).checkpoint("last"))
    assert a.keys() == b.keys() and any("lora_" in k for k in a) == (strategy == "lora")
    for k in a:
        assert torch.equal(a[k], b[k]), k


class _StepLog(Callback):
    """Records the step number after each optimizer step."""

    def __init__(self, steps: list):
        self.steps = steps

    def on_step_end(self, state) -> None:
        self.steps.append(state.step)


def test_accumulated_micro_batches_take_the_step_of_one_batch(tmp_path, tiny_lms, sft_file):
    """Micro-batches hold different numbers of answer tokens: each one's mean loss is weighted by its
    count, so 2 x 8 examples give the step of 16 (unweighted means moved the adapters by 3e-2)."""
    from zerotune.run.files import RunDir
    from zerotune.train.checkpoint import read_weights

    extra = ["finetune.strategy=lora", "train.deterministic=true", "log.tensorboard=false", "sft.eval_prompts=0"]
    one = zerotune.train(config(tmp_path, tiny_lms["llama"], sft_file, *extra, "log.name=one"))
    two = zerotune.train(config(tmp_path, tiny_lms["llama"], sft_file, *extra, "train.batch_size=8",
                                "train.accumulate=2", "log.name=two"))
    assert one.steps == two.steps
    a, b = (read_weights(RunDir(r.run_dir).checkpoint("last")) for r in (one, two))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
