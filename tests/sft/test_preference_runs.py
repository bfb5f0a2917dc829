"""Preference tuning end to end: `zerotune finetune` with data.name = "preference" raises the reward
accuracy on a synthetic set (chosen: the right sum; rejected: a zero too many), writes the rewards to
TensorBoard and metrics.json, and resumes."""

import json

import pytest
import torch

import zerotune
from zerotune.config import load_config

BASE = ["data.name=preference", "data.max_length=48", "train.epochs=1", "train.batch_size=8", "train.threads=1",
        "optim.lr=3e-3", "log.progress=false", "log.tensorboard=false", "finetune.baseline=false"]
TAGS = ["rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy", "logps/chosen", "logps/rejected"]


def _prefers_chosen(run_dir, checkpoint="best", model=None) -> float:
    """The share of val pairs whose chosen answer the model itself finds likelier (no reference involved)."""
    from zerotune.modes.registry import base_mode
    from zerotune.runload.load import load_run, run_data

    run = load_run(run_dir, checkpoint)
    data = run_data(run)
    policy, _ = base_mode(run.config).task(run.config, data).measure(model or run.model, data.val)
    return float((policy[:, 0] > policy[:, 1]).float().mean())


def test_cli_run_raises_preference_accuracy_and_writes_the_rewards(tmp_path, tiny_lms, pairs_file, read_events,
                                                                    cli):
    recipe = tmp_path / "dpo.toml"
    recipe.write_text(f'data.name = "preference"\ndata.path = "{pairs_file}"\ndata.max_length = 48\n'
                      '[preference]\nloss = "dpo"\nbeta = 0.1\nlabel_smoothing = 0.0\n', encoding="utf-8")
    cmd = ["finetune", recipe, "--from", tiny_lms["llama"], "--strategy", "lora", "--runs-dir", tmp_path,
           "--name", "dpo", "--no-progress",
           "--set", "train.epochs=4", "--set", "train.batch_size=8", "--set", "train.threads=1",
           "--set", "optim.lr=2e-2", "--set", "finetune.lora_rank=8", "--set", "train.precision=32",
           "--set", "log.layer_stats_every=0", "--set", "log.histograms_every=0", "--set", "preference.eval_prompts=6",
           "--set", r"preference.answer_regex=\d+", "--set", "preference.max_new_tokens=4"]
    done = cli(*cmd)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "dpo"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    before, after = metrics["finetune"]["before"], metrics["val"]
    assert before["val/rewards/accuracy"] == 0 and before["val/loss"] == pytest.approx(0.6931, abs=1e-3)
    print(f"val preference accuracy: before {before['val/rewards/accuracy']}, after {after['preference_accuracy']}; "
          f"test after {metrics['test']['preference_accuracy']}")
    assert after["preference_accuracy"] >= 0.8 and metrics["test"]["preference_accuracy"] >= 0.8
    assert after["rewards/margin"] > 0 and after["loss"] < before["val/loss"]
    assert metrics["finetune"]["after"]["val/preference_accuracy"] == after["preference_accuracy"]
    scalars = set(read_events(run_dir).Tags()["scalars"])
    assert {f"{split}/{tag}" for split in ("train", "val") for tag in TAGS} <= scalars
    assert {"train/loss", "val/loss", "best/val/loss"} <= scalars
    assert not (run_dir / "reference_logps.safetensors").exists()  # LoRA: the adapters switched off instead
    _check_answers(run_dir, metrics, read_events(run_dir))
    assert _prefers_chosen(run_dir) > 0.6
    done = cli("eval", run_dir, "--split", "val", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["preference_accuracy"] == pytest.approx(after["preference_accuracy"])
    done = cli("train", "--resume", run_dir)
    assert done.returncode == 0 and "nothing left to train" in done.stderr, done.stderr


def _check_answers(run_dir, metrics, events):
    """answers/chosen and answers/preferred against the greedy answers decoded here, and the Text tab's table."""
    import re

    from zerotune.lm.answer import greedy_ids
    from zerotune.runload.load import load_run, run_data

    run = load_run(run_dir, "best")
    data = run_data(run)
    val, fmt = data.val, data.chat
    run.model.eval()
    got = [fmt.decode(greedy_ids(run.model, val.prompt(i), 4, fmt.stop_id)) for i in range(len(val))]
    chosen = [fmt.decode(val.answer(i, 0)).strip() for i in range(len(val))]
    val_metrics = metrics["val"]
    assert val_metrics["answers/chosen"] == pytest.approx(sum(a.strip() == c for a, c in zip(got, chosen)) / len(val))
    assert val_metrics["answers/preferred"] == pytest.approx(
        sum(re.fullmatch(r"\d+", a.strip()) is not None for a in got) / len(val))
    assert {"val/answers/chosen", "val/answers/preferred"} <= set(metrics["finetune"]["before"])
    assert "val/answers/preferred" in set(events.Tags()["scalars"])
    table = events.Tensors("preference/answers/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "base model" in table and "preferred" in table and len(table.splitlines()) == 2 + 4  # board_prompts


def _config(root, source, data, name, *extra):
    return load_config(None, [*BASE, f"data.path={data}", f"finetune.source={source}", f"log.dir={root}",
                              f"log.name={name}", *extra])


@pytest.mark.parametrize("strategy", ["lora", "full"])
def test_resume_of_a_half_finished_and_a_finished_run(tmp_path, gpt_run, pairs_file, strategy):
    from zerotune.train.checkpoint import read_weights

    extra = [f"finetune.strategy={strategy}", "train.deterministic=true", "preference.loss=ipo",
             "preference.beta=0.5"]
    whole = zerotune.train(_config(tmp_path, gpt_run, pairs_file, "whole", *extra, "train.max_steps=6"))
    half = zerotune.train(_config(tmp_path, gpt_run, pairs_file, "half", *extra, "train.max_steps=3",
                                  "train.checkpoint_every_steps=3"))
    resumed = zerotune.train(None, resume=half.run_dir, resume_overrides=["train.max_steps=6"])
    assert resumed.steps == 6
    a = read_weights(whole.run_dir / "checkpoints" / "last")
    b = read_weights(half.run_dir / "checkpoints" / "last")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    again = zerotune.train(None, resume=half.run_dir)  # finished: nothing left to train
    assert again.steps == 6 and again.metrics == resumed.metrics
    assert resumed.metrics["val"]["loss"] == pytest.approx(whole.metrics["val"]["loss"])


def test_preference_data_needs_a_source(tmp_path, pairs_file):
    from zerotune.errors import UserError

    with pytest.raises(UserError, match="zerotune finetune RECIPE --from SOURCE"):
        zerotune.train(load_config(None, [*BASE, f"data.path={pairs_file}", f"log.dir={tmp_path}"]))


def test_a_preference_run_is_served_and_exported_as_a_chat_model(tmp_path, gpt_run, pairs_file):
    """Serve answers in the run's chat format what `generate` answers; export reads the pairs' sequences as
    token-id inputs (tests/sft/test_sft_export.py exports a chat model of this kind end to end)."""
    import httpx
    import openai

    from zerotune.export.inputs import load_data
    from zerotune.export.signature import signature_for
    from zerotune.pipeline.generate import generate
    from zerotune.runload.load import load_run, run_data
    from zerotune.serve import create_app, load_served_model, running_server

    run_dir = zerotune.train(_config(tmp_path, gpt_run, pairs_file, "served", "finetune.strategy=lora",
                                     "train.max_steps=3")).run_dir
    own = "".join(generate(run_dir, "What is 2+3?", max_new_tokens=4, temperature=0))
    with running_server(create_app(load_served_model(run_dir))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=60))
        chat = client.chat.completions.create(model=run_dir.name, max_tokens=4, temperature=0,
                                              messages=[{"role": "user", "content": "What is 2+3?"}])
    assert chat.choices[0].message.content == own
    run = load_run(run_dir, "best")
    assert signature_for(run.meta, run.model).kind == "lm"
    pairs, rows = run_data(run).test, load_data(run).test  # each pair's chosen and rejected sequence, one a row
    assert rows.x.dim() == 2 and torch.equal(rows.x.view(len(pairs), 2, -1), pairs.x)
