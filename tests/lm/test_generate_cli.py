"""`zerotune generate` end to end, and the one-line errors of bad language-model input.

The command runs in this process (`cli`); one test runs the real entry point in a process of its own.
"""

import os
import subprocess
import sys

import pytest

from zerotune.pipeline.generate import generate


def zt_process(*args):
    """The real console entry point in a process of its own."""
    return subprocess.run([sys.executable, "-m", "zerotune", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200"})


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not getattr(proc, "warnings", None), proc.warnings  # in this process, recorded instead of printed
    for n in needles:
        assert n in lines[0], lines[0]


def test_generate_continues_the_prompt_in_the_style_of_the_corpus(lm_run, cli):
    proc = cli("generate", str(lm_run), "--prompt", "the cat ", "--max-tokens", "60", "--seed", "3",
               "--temperature", "0")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("the cat ")
    first = out.splitlines()[0]
    words = first.split()
    # greedy decoding of a model that learned the grammar: "the cat <verb> <object>."
    assert words[2] in ("sees", "likes", "finds", "follows", "greets"), first
    assert first.endswith("."), first


def test_streamed_and_whole_output_are_the_same(lm_run, cli):
    args = ["generate", str(lm_run), "--prompt", "a dog", "--max-tokens", "50", "--seed", "7", "--top-k", "5"]
    streamed, whole = cli(*args), cli(*args, "--no-stream")
    assert streamed.returncode == whole.returncode == 0
    assert streamed.stdout == whole.stdout and len(streamed.stdout) > len("a dog") + 20


def test_cache_does_not_change_the_output(lm_run):
    opts = dict(max_new_tokens=80, temperature=1.0, top_p=0.9, seed=11)
    with_cache = "".join(generate(lm_run, "my friend", **opts))
    without = "".join(generate(lm_run, "my friend", use_cache=False, **opts))
    assert with_cache == without and len(with_cache) > 0


def test_stop_string_ends_the_output_before_it(lm_run):
    text = "".join(generate(lm_run, "the king", max_new_tokens=200, seed=1, stop=["\n"]))
    assert "\n" not in text and text.endswith(".")


def test_prompt_outside_the_character_vocabulary(lm_run):  # the real process: exit 2, one line, no traceback
    assert_one_line_error(zt_process("generate", str(lm_run), "--prompt", "Zoë"), "prompt", "vocabulary", "'Z'")


def test_generate_refuses_a_classifier_run(tabular_run, cli):
    assert_one_line_error(cli("generate", str(tabular_run), "--prompt", "hi"), "language-model run")


@pytest.mark.parametrize("option, value, needle", [
    ("--temperature", "-1", "temperature"), ("--top-p", "1.5", "top_p"), ("--top-k", "0", "top_k"),
    ("--max-tokens", "0", "max"),
])
def test_bad_sampling_options(lm_run, cli, option, value, needle):
    assert_one_line_error(cli("generate", str(lm_run), "--prompt", "the", option, value), needle)


@pytest.mark.parametrize("content, needle", [
    (b"", "empty"),
    (b"   \n\n  ", "empty"),
    (b"hello\x00\x01\x02 world" * 50, "binary"),
    (b"caf\xe9 au lait " * 100, "UTF-8"),
])
def test_bad_corpus_files(tmp_path, cli, content, needle):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    runs = tmp_path / "runs"
    proc = cli("train", "--runs-dir", str(runs), "--name", "bad", "--no-progress", "--set", "data.name=corpus",
               "--set", f"data.path={path}", "--set", "model.name=gpt", "--set", f"data.cache_dir={tmp_path / 'c'}")
    assert_one_line_error(proc, str(path))
    assert needle.lower() in proc.stderr.lower()
    assert not (runs / "bad").exists()


def test_eval_prints_loss_perplexity_and_bits(lm_run, cli):
    proc = cli("eval", str(lm_run), "--split", "val")
    assert proc.returncode == 0, proc.stderr
    assert "perplexity" in proc.stdout and "bits per token" in proc.stdout


def test_compiled_training_steps_match_eager(tmp_path, corpus_file, lm_config):
    pytest.importorskip("torch._inductor")
    import zerotune

    results = {}
    for compiled in (False, True):
        cfg = lm_config(tmp_path, corpus_file, tmp_path / "cache", f"c{compiled}", "train.max_steps=3",
                        "model.n_layer=1", f"train.compile={str(compiled).lower()}")
        results[compiled] = zerotune.train(cfg).metrics["val"]["loss"]
    assert results[True] == pytest.approx(results[False], rel=1e-3)
