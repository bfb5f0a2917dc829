"""Preference data: records checked line by line (file:line), pairs formatted exactly as SFT formats a response."""

import json

import pytest

from zerotune.data.chat import ChatFormat
from zerotune.data.preference import encode_pairs, read_pairs
from zerotune.data.sft import IGNORE, encode_records
from zerotune.errors import UserError

GOOD = {"prompt": "What is 1+2?", "chosen": "3", "rejected": "4"}


def write(tmp_path, lines, raw: bytes = b""):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes("".join(line + "\n" for line in lines).encode() + raw)
    return path


@pytest.mark.parametrize("bad, says", [
    ({"prompt": "q", "chosen": "a"}, "missing field 'rejected'"),
    ({"chosen": "a", "rejected": "b"}, "missing field 'prompt' (or 'messages', a chat list)"),
    ({"prompt": "q", "chosen": 3, "rejected": "b"}, "'chosen' must be a string (text), not a number"),
    ({"prompt": "q", "chosen": "a", "rejected": " "}, "empty 'rejected'"),
    ({"prompt": "q", "chosen": "a", "rejected": "b", "system": 1}, "'system' must be a string"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}], "chosen": "a",
      "rejected": "b"}, "must end with a user message"),
    ({"messages": [{"role": "robot", "content": "q"}], "chosen": "a", "rejected": "b"}, "unknown role 'robot'"),
    ([1, 2], "a record is a JSON object with 'prompt' (or 'messages'), 'chosen' and 'rejected'"),
])
def test_a_bad_record_is_named_by_file_and_line(tmp_path, bad, says):
    path = write(tmp_path, [json.dumps(GOOD)] * 3 + [json.dumps(bad)])
    with pytest.raises(UserError) as e:
        read_pairs(path)
    message = str(e.value)
    assert message.startswith(f"{path}:4: ") and says in message and "\n" not in message


def test_bad_json_and_bytes_are_named_by_line(tmp_path):
    with pytest.raises(UserError, match=r"pairs.jsonl:2: not valid JSON"):
        read_pairs(write(tmp_path, [json.dumps(GOOD), "{oops", json.dumps(GOOD)]))
    with pytest.raises(UserError, match=r"pairs.jsonl:4: not UTF-8 text"):
        read_pairs(write(tmp_path, [json.dumps(GOOD)] * 3, b"\xff\xfe\n"))


def test_pairs_are_the_sft_rows_of_each_answer(tiny_lms):
    from transformers import AutoTokenizer

    fmt = ChatFormat(AutoTokenizer.from_pretrained(str(tiny_lms["qwen2"])))  # the chat-template case
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 1+2?"}]
    records = [(1, (chat, "3", "4 or so"))]
    x, y, lengths, prompts, _ = encode_pairs(records, fmt, 48, "f")
    for k, answer in enumerate(["3", "4 or so"]):
        sx, sy, slen, sp, _ = encode_records([(1, chat + [{"role": "assistant", "content": answer}])], fmt, 48,
                                             True, "f")
        assert (x[0, k] == sx[0]).all() and (y[0, k] == sy[0]).all() and lengths[0, k] == slen[0]
        assert (y[0, k, :prompts[0] - 1] == IGNORE).all()  # the prompt is never scored
    assert prompts[0] == sp[0]


def test_a_ranks_share_of_a_batch_keeps_each_pairs_answers_together():
    """`--nproc N`: rank r takes pairs, not rows; the ranks' shares put together are the global batch."""
    import torch

    from zerotune.data.preference import PreferenceSplit
    from zerotune.distributed.shard import ShardedBatches

    n, width = 5, 6
    x = torch.arange(n * 2 * width).view(n, 2, width)
    y = torch.where(torch.arange(width) >= 3, x, IGNORE)
    split = PreferenceSplit(x, y, None, torch.full((n, 2), width), torch.full((n,), 3),
                            ref=torch.arange(n * 2, dtype=torch.float32).view(n, 2))
    batches = split.in_order(n)
    whole_x, whole = batches[0]
    parts = [ShardedBatches(batches, rank, 2)[0] for rank in range(2)]
    assert [len(t) for _, t in parts] == [3, 2]
    for (px, t), pairs in zip(parts, (range(0, 3), range(3, 5))):
        pairs = list(pairs)
        assert torch.equal(px, torch.cat([x[pairs, 0], x[pairs, 1]]))  # the chosen rows first, then the rejected
        assert torch.equal(t.labels, torch.cat([y[pairs, 0], y[pairs, 1]]))
        assert torch.equal(t.reference, whole.reference[pairs])
