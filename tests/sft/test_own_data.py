"""A task of one's own: the chat template's characters named in the refusal and added by data.chat_chars,
every held-out answer written by `eval --answers`, and a corpus run scored on a prompts file (`eval --prompts`)."""

import json

import pytest

import zerotune
from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.data.chat import TEMPLATE_CHARS, ChatFormat, user_turn
from zerotune.data.lm_tokenizer import CharTokenizer
from zerotune.data.sft import encode_records, read_records
from zerotune.errors import UserError


def arithmetic_records(n: int, seed: int = 0) -> list[dict]:
    """The first sums from `seed` on: questions like those the session's GPT was pretrained on."""
    return [{"prompt": f"What is {a}+{b}?", "response": str(a + b)} for a, b in [(k % 10, k // 10) for k in range(seed, seed + n)]]

CORPUS_CHARS = "0123456789 +?Whatis"  # arithmetic text without the chat format's "User:" / "Assistant:"


def test_characters_of_the_template_are_blamed_on_it(tmp_path, jsonl):
    data = jsonl(tmp_path / "train.jsonl", arithmetic_records(3))
    fmt = ChatFormat(CharTokenizer(CORPUS_CHARS))
    with pytest.raises(UserError) as e:
        encode_records(read_records(data), fmt, 64, True, data)
    msg = str(e.value)
    assert msg.startswith(f"{data}:1: the default chat template") and "\n" not in msg
    assert "'U', 'e', 'r', ':'" in msg and "they come from the template, not from the record" in msg
    assert "--set data.chat_chars=true" in msg and "the prompt has" not in msg


def test_characters_of_the_record_are_blamed_on_it():
    fmt = ChatFormat(CharTokenizer(set(CORPUS_CHARS + TEMPLATE_CHARS)))
    with pytest.raises(UserError, match=r"^the prompt has characters outside .*: '%', '&'; add text with them"):
        fmt.prompt_ids(user_turn("What is 2%3&?"))
    assert fmt.decode(fmt.response_ids("5")) == "5"


def test_chat_chars_puts_the_template_in_a_corpus_vocabulary(tmp_path):
    from zerotune.data.corpus import build_corpus_data

    corpus = tmp_path / "c.txt"
    corpus.write_text("What is 1+2? 3\n" * 40, encoding="utf-8")
    cfg = load_config(None, ["data.name=corpus", f"data.path={corpus}", "data.block_size=8",
                             f"data.cache_dir={tmp_path / 'cache'}", "data.chat_chars=true"]).data
    _, tok = build_corpus_data(cfg)
    assert set(TEMPLATE_CHARS) <= set(tok.chars) and ChatFormat(tok).prompt_ids(user_turn("What is 1+2?"))
    _, plain = build_corpus_data(cfg.model_copy(update={"chat_chars": False}))
    assert "U" not in plain.chars  # a cache of its own, not the other run's vocabulary
    with pytest.raises(UserError, match="chat_chars applies to a character vocabulary"):
        load_config(None, ["data.name=corpus", "data.tokenizer=bpe", "data.chat_chars=true"])


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, gpt_run, sft_file):
    """A GPT tuned for a few steps: its answers are whatever they are; the file must say them exactly."""
    root = tmp_path_factory.mktemp("own")
    cfg = load_config(None, ["data.name=sft", f"data.path={sft_file}", f"finetune.source={gpt_run}", "data.max_length=48",
                             "train.max_steps=2", "train.batch_size=16", "train.threads=1", "sft.eval_prompts=2",
                             "sft.max_new_tokens=4", "log.progress=false", "log.tensorboard=false",
                             "finetune.baseline=false", f"log.dir={root}", "log.name=tuned"])
    return zerotune.train(cfg).run_dir


def read_rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_eval_answers_writes_every_held_out_record(sft_run, sft_file, capsys):
    assert main(["eval", str(sft_run), "--split", "val", "--answers", "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    out = sft_run / "eval" / "answers-val.jsonl"
    assert m["answers"] == str(out)
    rows = read_rows(out)
    records = [json.loads(line) for line in open(sft_file, encoding="utf-8")]
    assert len(rows) == m["n"] == 10 and all(set(r) == {"line", "prompt", "reference", "answer", "match"} for r in rows)
    for r in rows:
        assert (r["prompt"], r["reference"]) == (records[r["line"] - 1]["prompt"], records[r["line"] - 1]["response"])
        assert r["match"] == (r["answer"].strip() == r["reference"].strip())
    assert m["exact_match"] == sum(r["match"] for r in rows) / len(rows)
    before = out.read_bytes()
    assert main(["eval", str(sft_run), "--split", "val", "--answers"]) == 2  # never overwritten silently
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists; pass --force" in err and out.read_bytes() == before
    assert main(["eval", str(sft_run), "--split", "val", "--answers", "--force"]) == 0
    assert out.read_bytes() == before and f"answers: {out} (10 records" in capsys.readouterr().out


def test_eval_prompts_scores_a_corpus_run(gpt_run, tmp_path, jsonl, capsys):
    prompts = jsonl(tmp_path / "ask.jsonl", arithmetic_records(6, seed=1))
    out = tmp_path / "answers.jsonl"
    assert main(["eval", str(gpt_run), "--prompts", prompts, "--answers", str(out), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    rows = read_rows(out)
    assert m["split"] == prompts and m["n"] == len(rows) == 6 and [r["line"] for r in rows] == list(range(1, 7))
    assert [r["reference"] for r in rows] == [r["response"] for r in arithmetic_records(6, seed=1)]
    assert m["exact_match"] == sum(r["match"] for r in rows) / 6 and m["tokens"] > 0


@pytest.mark.parametrize("case, message", [
    ("missing", "--prompts {d}/none.jsonl does not exist"),
    ("bad line", "{d}/bad.jsonl:2: not valid JSON"),
    ("not a language model", "--prompts applies to language-model runs"),
    ("answers of a corpus split", "--answers applies to instruction-tuned runs"),
    ("force alone", "--force overwrites the file of --answers; give --answers too"),
])
def test_bad_prompts_are_one_line_and_exit_2(gpt_run, tmp_path, capsys, case, message):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "response": "b"}\n{"prompt": \n', encoding="utf-8")
    args = ["eval", str(gpt_run), "--prompts", str(tmp_path / ("none.jsonl" if case == "missing" else "bad.jsonl"))]
    if case == "not a language model":
        (tmp_path / "cls").mkdir()
        (tmp_path / "cls" / "config.yaml").write_text("data: {name: digits}\n", encoding="utf-8")
        args[1] = str(tmp_path / "cls")
    if case == "answers of a corpus split":
        args = ["eval", str(gpt_run), "--answers", str(tmp_path / "a.jsonl")]
    if case == "force alone":
        args = ["eval", str(gpt_run), "--force"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(d=tmp_path) in err and not (tmp_path / "a.jsonl").exists()
