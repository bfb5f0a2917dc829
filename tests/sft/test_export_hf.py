"""A tuned causal LM that leaves zerotune, read by transformers alone: `zerotune export RUN --format hf` (a Hugging
Face directory) and `--format gguf` (one GGUF file for llama.cpp)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zerotune.cli.main import main
from zerotune.export.llamacpp_answers import llamacpp_installed
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


# Nothing of this environment reaches the child but these; one OpenMP thread, as this process has under
# xdist: 20 greedy answers of a tiny model took 15 s instead of 1.5 beside other work with a thread per core.
CHILD_ENV = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, tiny_lms, sft_file):
    """(a run tuned on 80 of the 100 sums, the 20 prompts it never saw)."""
    root = tmp_path_factory.mktemp("hf-export")
    lines = Path(sft_file).read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "train.jsonl").write_text("".join(lines[:80]), encoding="utf-8")
    run = tune(root, tiny_lms["qwen2"], root / "train.jsonl", "train.max_steps=60", "train.epochs=20",
               "optim.lr=1e-2", "log.name=hf")
    return run, [json.loads(line)["prompt"] for line in lines[80:]]


@pytest.fixture(scope="module")
def ours(tuned):
    """The tuned run's own greedy answers to its held-out prompts, what each export must answer."""
    run, prompts = tuned
    return ["".join(generate(run, p, temperature=0, max_new_tokens=8)).strip() for p in prompts]


def zt(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_directory_loads_without_zerotune_and_answers_as_zerotune_does(tuned, ours, capsys):
    tuned, prompts = tuned
    code, out, err = zt(capsys, "export", tuned, "--format", "hf")
    assert code == 0, err
    target = tuned / "export" / "hf"
    assert out.splitlines()[0].startswith(f"wrote {target}/ (") and "LoRA adapters merged" in out
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        p.name for p in target.iterdir()}
    assert not any(p.name.startswith(".") for p in target.parent.iterdir())  # no temporary folder left
    read = subprocess.run([sys.executable, "-c", READ_BACK, str(target), json.dumps(prompts)], capture_output=True,
                          text=True, env=CHILD_ENV)
    assert read.returncode == 0, read.stderr[-2000:]
    theirs = json.loads(read.stdout.strip().splitlines()[-1])
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


def test_the_gguf_file_carries_model_tokenizer_and_template_and_answers_as_zerotune_does(tuned, ours, capsys):
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tuned, prompts = tuned
    code, out, err = zt(capsys, "export", tuned, "--format", "gguf")
    target = tuned / "export" / "model-f16.gguf"
    assert code == 0 and out.splitlines() == [
        f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, GGUF f16, LoRA adapters merged; written in "
        f"{out.split('written in ')[1].split(' s)')[0]} s)",
        "read back by transformers: 20/20 greedy answers of up to 3 tokens the same (20 held-out records): ok"], err
    assert not any(p.name.startswith(".") for p in target.parent.iterdir())  # no temporary file left
    fields = {k: f.contents() for k, f in gguf.GGUFReader(target).fields.items()}
    run_tokenizer = AutoTokenizer.from_pretrained(tuned / "hf")
    assert {k: fields[f"qwen2.{k}"] for k in ("context_length", "embedding_length", "block_count", "vocab_size",
                                               "attention.head_count", "attention.head_count_kv")} == {
        "context_length": 128, "embedding_length": 32, "block_count": 2, "vocab_size": len(run_tokenizer),
        "attention.head_count": 4, "attention.head_count_kv": 2}
    assert fields["qwen2.rope.freq_base"] == 10000.0 and abs(fields["qwen2.attention.layer_norm_rms_epsilon"] - 1e-6) < 1e-9
    assert fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_F16 and fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "qwen2" and fields["tokenizer.chat_template"] == run_tokenizer.chat_template
    assert fields["tokenizer.ggml.tokens"] == run_tokenizer.convert_ids_to_tokens(list(range(len(run_tokenizer))))
    assert fields["tokenizer.ggml.eos_token_id"] == fields["tokenizer.ggml.eot_token_id"] == run_tokenizer.eos_token_id
    assert len(fields["tokenizer.ggml.merges"]) > 0 and fields["tokenizer.ggml.token_type"][:4] == [3, 3, 3, 3]

    where = dict(pretrained_model_name_or_path=target.parent, gguf_file=target.name)
    theirs = AutoTokenizer.from_pretrained(**where)
    model = AutoModelForCausalLM.from_pretrained(**where).eval()
    def encode(tokenizer, prompt):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    ids = [encode(run_tokenizer, p) for p in prompts]
    assert [encode(theirs, p) for p in prompts] == ids
    answers = [theirs.decode(model.generate(torch.tensor([i]), max_new_tokens=8, do_sample=False)[0, len(i):],
                             skip_special_tokens=True).strip() for i in ids]
    assert answers == ours and len(set(ours)) > 1


def test_gguf_refuses_other_runs_unknown_quantizations_and_keeps_existing_files(tuned, tmp_path, capsys, gpt_run,
                                                                               tabular_run):
    tuned, _ = tuned
    out = tmp_path / "q.gguf"
    code, _, err = zt(capsys, "export", tuned, "--format", "gguf", "--quant", "q4_k", "--out", out)
    assert code == 2 and err == "error: GGUF quantization 'q4_k' is unknown; allowed: f16, q8_0\n" and not out.exists()
    for run, kind in ((gpt_run, "'gpt'"), (tabular_run, "'logistic_regression'")):
        code, _, err = zt(capsys, "export", run, "--format", "gguf")
        assert code == 2 and err.count("\n") == 1 and f"holds a {kind} model" in err and "model hf_lm" in err, err
        assert not (run / "export").exists() or not list((run / "export").glob("*.gguf"))
    out.write_bytes(b"old")
    code, _, err = zt(capsys, "export", tuned, "--format", "gguf", "--out", out)
    assert code == 2 and "already exists; pass --force" in err and out.read_bytes() == b"old"
    code, _, err = zt(capsys, "export", tuned, "--format", "gguf", "--out", tmp_path / "model.bin")
    assert code == 2 and "GGUF files must end in .gguf" in err
    code, _, err = zt(capsys, "export", tuned, "--format", "onnx", "--quant", "q8_0")
    assert code == 2 and "--quant applies to --format gguf" in err


def test_the_writer_refuses_architectures_it_cannot_describe():
    from transformers import GPT2Config, LlamaConfig

    from zerotune.errors import UserError
    from zerotune.export.gguf_writer import check_architecture

    with pytest.raises(UserError, match=r"takes llama and qwen2 causal LMs; this run's model is 'gpt2'"):
        check_architecture(GPT2Config())
    with pytest.raises(UserError, match=r"plain rotary embeddings; this model uses 'linear' scaling"):
        check_architecture(LlamaConfig(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_written_weights_give_transformers_logits_back(tiny_lms, tmp_path, arch):
    """Llama's q/k rows go to llama.cpp's rotary order and transformers undoes it: logits match (f16, q8_0)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from zerotune.export.gguf_writer import write_gguf

    model = AutoModelForCausalLM.from_pretrained(tiny_lms[arch], dtype=torch.float32).eval()
    with torch.no_grad():  # sharp attention and large logits: a rotary order read back wrong then shows plainly
        for name, p in model.named_parameters():
            p.mul_(30.0 if name.endswith(("q_proj.weight", "k_proj.weight")) else 4.0 if "lm_head" in name else 1.0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lms[arch])
    x = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = model(x).logits
    for quant, bound in (("f16", 0.05), ("q8_0", 0.5)):  # of the logits' spread; a wrong rotary order gives 3.4
        path = tmp_path / f"{arch}-{quant}.gguf"
        write_gguf(path, model, tokenizer, tiny_lms[arch], quant, 2, "{{ messages }}", arch)
        again = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name, dtype=torch.float32).eval()
        with torch.no_grad():
            diff = float((again(x).logits - want).abs().max() / want.std())
        assert diff < bound, (quant, diff)


def test_compare_measures_pytorch_hf_and_gguf_side_by_side_and_writes_nothing(tuned, capsys):
    tuned, _ = tuned
    before = sorted(p.relative_to(tuned) for p in tuned.rglob("*"))
    code, out, err = zt(capsys, "export", tuned, "--compare", "--threads", "1", "--json")
    assert code == 0, err
    rows = {r["variant"]: r for r in json.loads(out)["rows"]}
    by_llamacpp = ["llama.cpp gguf f16", "llama.cpp gguf q8_0"] if llamacpp_installed() else []
    assert list(rows) == ["pytorch fp32 (eager)", "hf directory (float32)", "gguf f16", "gguf q8_0", *by_llamacpp]
    # the same files run by llama.cpp; this run's answers are near ties that q8_0 may flip (as in transformers)
    assert all(rows[v]["bytes"] == rows[v[len("llama.cpp "):]]["bytes"] and rows[v]["total"] == 20 for v in by_llamacpp)
    assert not by_llamacpp or rows["llama.cpp gguf f16"]["same"] == 20
    assert all(r["same"] == r["total"] == 20 for r in list(rows.values())[:3]) and rows["gguf q8_0"]["total"] == 20
    assert rows["gguf q8_0"]["bytes"] < rows["gguf f16"]["bytes"] < rows["pytorch fp32 (eager)"]["bytes"]
    assert all(r["tokens_per_s"] > 0 for r in rows.values())
    assert sorted(p.relative_to(tuned) for p in tuned.rglob("*")) == before


def test_a_gguf_source_is_parsed_once_and_dequantized_to_the_exported_weights(tuned, tmp_path, monkeypatch):
    """`--from file.gguf`: transformers opens the file for its config, its tokenizer and its weights; zerotune
    hands it one parsed reader (a parse is seconds for a real vocabulary), and the directory it writes
    holds the run's merged weights as the f16 file keeps them."""
    import gguf
    from safetensors.torch import load_file

    from zerotune.export.gguf_export import export_gguf
    from zerotune.export.hf_dir import export_hf
    from zerotune.models.gguf_source import dequantized

    run, prompts = tuned
    exported = export_gguf(run, "f16", tmp_path / "model-f16.gguf", prompts=prompts[:2])
    merged = load_file(export_hf(run, tmp_path / "hf").path / "model.safetensors")
    opened = []

    class Counted(gguf.GGUFReader):
        def __init__(self, path, *args, **kwargs):
            opened.append(Path(path).name)
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", Counted)
    monkeypatch.setenv("ZEROTUNE_HOME", str(tmp_path / "home"))
    directory = dequantized(exported.path)
    assert opened == ["model-f16.gguf"] and gguf.GGUFReader is Counted  # parsed once, the reader put back
    weights = load_file(directory / "model.safetensors")
    assert weights.keys() == merged.keys()
    for name, tensor in merged.items():
        torch.testing.assert_close(weights[name], tensor.half().float(), rtol=0, atol=0, msg=name)
