"""Instruction records: formats, chat templates, prompt masking, truncation and bad records."""

import json
import subprocess
import sys

import pytest

from zerotune.config import DataConfig, SFTConfig
from zerotune.data.sft import IGNORE, build_sft_data
from zerotune.data.text import load_tokenizer
from zerotune.errors import UserError
from zerotune.data.chat import ChatFormat


def bundle(path, tokenizer_dir, mask=True, max_length=64):
    fmt = ChatFormat(load_tokenizer(tokenizer_dir))
    return build_sft_data(DataConfig(name="sft", path=str(path), max_length=max_length), SFTConfig(mask_prompt=mask),
                          fmt, 300), fmt


def test_labels_cover_the_answer_only_unless_the_prompt_is_unmasked(tiny_lms, sft_file):
    data, fmt = bundle(sft_file, tiny_lms["llama"])
    split = data.train
    for i in range(5):
        n, p = int(split.lengths[i]), int(split.prompt_lengths[i])
        labels = split.y[i].tolist()
        assert all(v == IGNORE for v in labels[:p - 1] + labels[n - 1:])
        assert labels[p - 1:n - 1] == split.x[i, p:n].tolist()  # each answer token, predicted one step before
        assert split.x[i, n - 1] == fmt.end_id  # the answer ends with end-of-sequence
    unmasked, _ = bundle(sft_file, tiny_lms["llama"], mask=False)
    n = int(unmasked.train.lengths[0])
    assert unmasked.train.y[0, :n - 1].tolist() == unmasked.train.x[0, 1:n].tolist()


def test_the_tokenizers_chat_template_is_used_when_it_has_one(tiny_lms, sft_file):
    _, with_template = bundle(sft_file, tiny_lms["qwen2"])
    _, without = bundle(sft_file, tiny_lms["llama"])
    turn = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1+2?"}]
    assert with_template.prompt_text(turn) == "<|system|>Be brief.\n<|user|>What is 1+2?\n<|assistant|>"
    assert without.prompt_text(turn) == "System: Be brief.\nUser: What is 1+2?\nAssistant: "


def test_chat_records_and_instruction_records_give_the_same_rows(tmp_path, tiny_lms, jsonl):
    plain = [{"prompt": "What is 1+2?", "response": "3", "system": "Be brief."}] * 3
    chat = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1+2?"},
                          {"role": "assistant", "content": "3"}]}] * 3
    a, _ = bundle(jsonl(tmp_path / "a.jsonl", plain), tiny_lms["qwen2"])
    b, _ = bundle(jsonl(tmp_path / "b.jsonl", chat), tiny_lms["qwen2"])
    assert a.train.x.tolist() == b.train.x.tolist() and a.train.y.tolist() == b.train.y.tolist()


def test_long_examples_are_truncated_and_counted(tmp_path, tiny_lms, capsys, jsonl):
    records = [{"prompt": "What is 1+2?", "response": "3 " * (40 if i % 2 else 1)} for i in range(10)]
    data, _ = bundle(jsonl(tmp_path / "long.jsonl", records), tiny_lms["llama"], max_length=24)
    assert sum(data.meta.truncated.values()) == 5
    assert "5 of 10 examples longer than 24 tokens" in capsys.readouterr().err
    assert int(data.train.lengths.max()) == 24


@pytest.mark.parametrize("line, cause", [
    ({"prompt": "What is 1+2?"}, "missing field 'response'"),
    ({"prompt": "What is 1+2?", "response": " "}, "empty 'response'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "3"}]}, "unknown role 'bot'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}, "empty response"),
    ({"prompt": "What is " + "1+2 " * 40 + "?", "response": "3"}, "nothing of the response is left"),
])
def test_a_bad_record_is_named_by_its_line(tmp_path, tiny_lms, line, cause):
    good = {"prompt": "What is 1+2?", "response": "3"}
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [good, good, line, good]) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"bad.jsonl:3: .*{cause}"):
        bundle(path, tiny_lms["llama"], max_length=24)


def test_the_cli_answers_a_bad_record_with_one_line_and_exit_2(tmp_path, tiny_lms):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n' * 3 + '{"prompt": "a"}\n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "zerotune", "finetune", "--from", str(tiny_lms["gpt2"]),
                          "--set", "data.name=sft", "--set", f"data.path={path}", "--set", f"log.dir={tmp_path}"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "bad.jsonl:4: missing field 'response'" in out.stderr
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("sft-*"))


def _learned_runs(row_x, row_y, fmt) -> list[str]:
    """The text of each run of consecutive learned positions (labels are the next token)."""
    runs, current = [], []
    for t, label in enumerate(row_y.tolist()):
        if label != IGNORE:
            current.append(int(row_x[t + 1]))
        elif current:
            runs, current = runs + [current], []
    runs += [current] if current else []
    return [fmt.text(r) for r in runs]


CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1+2?"},
        {"role": "assistant", "content": "3"}, {"role": "user", "content": "And 2+2?"},
        {"role": "assistant", "content": "4"}]


# The default template's "Assistant: 3" is one token " 3" in this BPE when an answer follows, and
# "Assistant: " then "3" when the model is to write it; the tokenizer's own template has no such space.
@pytest.mark.parametrize("arch,earlier", [("llama", " 3\n"), ("qwen2", "3\n")])
def test_every_assistant_answer_of_a_chat_is_learned_and_nothing_else(tmp_path, tiny_lms, jsonl, arch, earlier,
                                                                      capsys):
    data, fmt = bundle(jsonl(tmp_path / "chat.jsonl", [{"messages": CHAT}] * 3), tiny_lms[arch], max_length=128)
    x, y = data.train.x[0], data.train.y[0]
    # The earlier answer ends as the format renders it (a newline); the last with end-of-sequence.
    assert _learned_runs(x, y, fmt) == [earlier, "4"]
    assert x[int(data.train.lengths[0]) - 1] == fmt.end_id and y[int(data.train.lengths[0]) - 2] == fmt.end_id
    assert "not where the chat format renders them" not in capsys.readouterr().err


def test_an_earlier_answer_the_template_does_not_render_stays_in_the_prompt(tiny_lms, capsys):
    from zerotune.data.sft import encode_records

    tok = load_tokenizer(tiny_lms["qwen2"])
    tok.chat_template = ("{% for m in messages %}{% if m['role'] != 'assistant' or loop.last %}<|{{ m['role'] }}|>"
                         "{{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>"
                         "{% endif %}")  # drops the assistant's earlier answers
    fmt = ChatFormat(tok)
    x, y, lengths, _, _ = encode_records([(1, CHAT)], fmt, 128, True, "chat.jsonl")
    assert _learned_runs(x[0], y[0], fmt) == ["4"]
    assert "1 earlier assistant answer(s) are not where the chat format renders them" in capsys.readouterr().err
