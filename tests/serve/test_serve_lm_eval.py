"""EleutherAI's lm-eval scores a multiple-choice task against `zerotune serve` (its `local-completions`
model: echo, logprobs, the server's own tokenizer found at /tokenizer_info), with the token, offline, and
gets the log-likelihoods and the accuracy that the run's model gives in-process.

lm-eval is not in the dev extra (it adds about 160 MB of packages to CI's install): the test skips
without it; `pip install 'zerotune[eval]'` brings it."""

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from zerotune import load_run
from zerotune.serve import ServeOptions, create_app, load_served_model, running_server

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install 'zerotune[eval]')")

TOKEN = "lm-eval-token-1"
SUBJECTS = ["the cat", "a dog", "my friend", "the king", "our queen"]
VERBS = ["sees", "likes", "finds", "follows", "greets"]
OBJECTS = ["the moon.", "a bird.", "the river.", "an apple.", "the sea."]
TASK = """task: zerotune_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
"""


def _items(n: int = 10) -> list[dict]:
    """Sentences of the corpus's grammar, each object against its reversal and its words swapped; the label is
    the grammatical choice in some items and not in others, so the accuracy is neither 0 nor 1."""
    rng = random.Random(3)
    items = []
    for i in range(n):
        obj = rng.choice(OBJECTS)
        choices = [obj, obj[::-1], " ".join(reversed(obj[:-1].split())) + "."]
        items.append({"context": f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)}", "choices": choices, "label": i % 3})
    return items


def _in_process(run_dir, items) -> list[list[float]]:
    """Each choice's log-likelihood after its context (lm-eval puts one space between them)."""
    run, encode = load_run(run_dir), load_served_model(run_dir).model.encode
    out = []
    for item in items:
        ctx, row = encode(item["context"]), []
        for choice in item["choices"]:
            ids = ctx + encode(" " + choice)
            with torch.no_grad():
                logp = torch.log_softmax(run.model(torch.tensor([ids]))[0].double(), -1)
            row.append(sum(logp[t - 1, ids[t]].item() for t in range(len(ctx), len(ids))))
        out.append(row)
    return out


def test_lm_eval_accuracy_equals_in_process_scoring(lm_run, tmp_path):
    items = _items()
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "zerotune_choice.yaml").write_text(TASK.format(items=tmp_path / "items.jsonl"))
    app = create_app(load_served_model(lm_run), ServeOptions(token=TOKEN))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "OPENAI_API_KEY": TOKEN, "OMP_NUM_THREADS": "1"}
    with running_server(app) as url:
        args = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--tasks", "zerotune_choice",
                "--include_path", str(tmp_path / "tasks"), "--output_path", str(tmp_path / "out"), "--log_samples",
                "--model_args", f"model=lm,base_url={url}/v1/completions,max_length=32,num_concurrent=1,"
                                f"max_retries=1,auth_token={TOKEN}"]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = (tmp_path / "out").rglob("results_*.json")
    (samples,) = (tmp_path / "out").rglob("samples_zerotune_choice_*.jsonl")
    acc = json.loads(results.read_text())["results"]["zerotune_choice"]["acc,none"]
    scored = {json.loads(line)["doc_id"]: json.loads(line) for line in samples.read_text().splitlines()}
    reference = _in_process(lm_run, items)
    for i, row in enumerate(reference):
        assert [float(r[0][0]) for r in scored[i]["resps"]] == pytest.approx(row, abs=1e-4)
    expected = sum(max(range(3), key=row.__getitem__) == item["label"] for row, item in zip(reference, items))
    assert acc == pytest.approx(expected / len(items)) and 0 < acc < 1
