"""`zerotune export RUN --format hf`: a tuned causal LM that leaves zerotune, read by transformers alone."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zerotune.cli.main import main
from zerotune.pipeline.generate import generate

from test_sft_serve import tune

# Run with `python -c`: transformers only, no zerotune anywhere in the process.
READ_BACK = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
directory, prompts = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForCausalLM.from_pretrained(directory).eval()
tokenizer = AutoTokenizer.from_pretrained(directory)
answers = []
for prompt in prompts:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    answers.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
assert not any(name.startswith("zerotune") for name in sys.modules)
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_lms, sft_file):
    """(a run tuned on 80 of the 100 sums, the 20 prompts it never saw)."""
    root = tmp_path_factory.mktemp("hf-export")
    lines = Path(sft_file).read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "train.jsonl").write_text("".join(lines[:80]), encoding="utf-8")
    run = tune(root, tiny_lms["qwen2"], root / "train.jsonl", "train.max_steps=60", "train.epochs=20",
               "optim.lr=1e-2", "log.name=hf")
    return run, [json.loads(line)["prompt"] for line in lines[80:]]


def zt(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_directory_loads_without_zerotune_and_answers_as_zerotune_does(tuned, capsys):
    tuned, prompts = tuned
    code, out, err = zt(capsys, "export", tuned, "--format", "hf")
    assert code == 0, err
    target = tuned / "export" / "hf"
    assert out.splitlines()[0].startswith(f"wrote {target}/ (") and "LoRA adapters merged" in out
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        p.name for p in target.iterdir()}
    assert not any(p.name.startswith(".") for p in target.parent.iterdir())  # no temporary folder left
    read = subprocess.run([sys.executable, "-c", READ_BACK, str(target), json.dumps(prompts)], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert read.returncode == 0, read.stderr[-2000:]
    theirs = json.loads(read.stdout.strip().splitlines()[-1])
    ours = ["".join(generate(tuned, p, temperature=0, max_new_tokens=8)).strip() for p in prompts]
    assert theirs == ours and len(set(ours)) > 1  # 20 answers, the same, and not one answer for everything


def test_an_existing_directory_needs_force_and_other_runs_are_refused(tuned, tmp_path, capsys, gpt_run):
    tuned, _ = tuned
    out = tmp_path / "elsewhere"
    assert zt(capsys, "export", tuned, "--format", "hf", "--out", out)[0] == 0
    (out / "marker").write_text("old")
    code, _, err = zt(capsys, "export", tuned, "--format", "hf", "--out", out)
    assert code == 2 and "already exists; pass --force" in err and (out / "marker").exists()
    code, _, err = zt(capsys, "export", tuned, "--format", "hf", "--out", out, "--force")
    assert code == 0 and not (out / "marker").exists() and (out / "model.safetensors").is_file(), err
    code, _, err = zt(capsys, "export", tuned, "--format", "hf", "--int8", "dynamic", "--out", tmp_path / "q")
    assert code == 2 and "--int8 and --prune apply to onnx and torchscript" in err
    code, _, err = zt(capsys, "export", gpt_run, "--format", "hf")
    assert code == 2 and err.count("\n") == 1 and "holds a 'gpt' model" in err, err
    assert not (gpt_run / "export" / "hf").exists()
