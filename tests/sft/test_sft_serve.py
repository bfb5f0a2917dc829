"""`zerotune serve RUN` on instruction-tuned runs: the OpenAI API answers as the run's own greedy answer does."""

import httpx
import openai
import pytest

import zerotune
from zerotune.config import load_config
from zerotune.pipeline.generate import generate
from zerotune.serve import create_app, load_served_model, running_server


BASE = ["data.name=sft", "data.max_length=32", "train.batch_size=16", "train.threads=1", "optim.lr=3e-3",
        "finetune.strategy=lora", "sft.eval_prompts=2", "sft.max_new_tokens=3", "finetune.baseline=false",
        "log.progress=false", "log.tensorboard=false", "log.histograms_every=0", "log.layer_stats_every=0"]

PROMPT = "What is 2+3?"


def tune(root, source, data, *extra):
    """A run instruction-tuned with LoRA from `source` (a GPT run or a transformers directory)."""
    cfg = load_config(None, [*BASE, f"data.path={data}", f"finetune.source={source}", f"log.dir={root}", *extra])
    return zerotune.train(cfg).run_dir


def served_answers(run_dir, max_tokens: int):
    """(chat answer, streamed chat answer) of the served run at temperature 0."""
    with running_server(create_app(load_served_model(run_dir))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=60))
        assert [m.id for m in client.models.list().data] == [run_dir.name]
        messages = [{"role": "user", "content": PROMPT}]
        chat = client.chat.completions.create(model=run_dir.name, messages=messages, max_tokens=max_tokens,
                                              temperature=0)
        stream = client.chat.completions.create(model=run_dir.name, messages=messages, max_tokens=max_tokens,
                                                temperature=0, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream)
        done = client.completions.create(model=run_dir.name, prompt="What is", max_tokens=3, temperature=0)
    assert done.choices[0].finish_reason in ("stop", "length") and done.usage.completion_tokens <= 3
    return chat.choices[0].message.content, streamed


def own_answer(run_dir, max_tokens: int) -> str:
    return "".join(generate(run_dir, PROMPT, max_new_tokens=max_tokens, temperature=0))


def test_a_tuned_gpt_run_is_served_with_its_chat_format(tmp_path, gpt_run, sft_file):
    run_dir = tune(tmp_path, gpt_run, sft_file, "train.max_steps=20", "log.name=gpt-sft")
    expected = own_answer(run_dir, 6)
    assert expected  # a real answer to compare, not an empty one
    assert served_answers(run_dir, 6) == (expected, expected)


@pytest.mark.parametrize("merged", [False, True], ids=["adapters", "merged"])
def test_a_tuned_transformers_run_is_served_with_its_chat_format(tmp_path, tiny_lms, sft_file, merged):
    from zerotune.pipeline.finetune import merge_lora

    run_dir = tune(tmp_path, tiny_lms["llama"], sft_file, "train.max_steps=40", "optim.lr=1e-2", "log.name=hf-sft")
    if merged:
        run_dir = merge_lora(run_dir)
    expected = own_answer(run_dir, 6)
    assert expected  # a real answer to compare, not an empty one
    assert served_answers(run_dir, 6) == (expected, expected)
