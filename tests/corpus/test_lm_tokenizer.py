"""Character and byte-level BPE tokenizers: round trips, errors, save/load, streaming training."""

import numpy as np
import pytest

from zerotune.data.lm_tokenizer import (
    BPETokenizer,
    CharTokenizer,
    load_tokenizer_dir,
    safe_cuts,
    train_tokenizer,
)
from zerotune.errors import UserError

UNICODE = ["héllo wörld", "emoji 🤖🎉 and € signs", "  leading spaces\n\n\ttabs\r\nCRLF  ", "日本語のテキスト",
           "\n", " ", ""]
TRAIN_TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "\n") * 5
_SYLLABLES = ["ka", "to", "mi", "ren", "sul", "bo", "de", "fa", "gin", "lor", "pe", "qua", "shi", "vex"]
# Many distinct made-up words: enough repeated pairs that BPE reaches the requested vocabulary.
WORDS = " ".join("".join(np.random.default_rng(i).choice(_SYLLABLES, size=1 + i % 3)) for i in range(3000))


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return train_tokenizer("bpe", iter([TRAIN_TEXT, "hello hello hello world\n" * 50, WORDS]), vocab_size=400)


def test_char_round_trip_unicode():
    tok = train_tokenizer("char", iter(UNICODE))
    for s in UNICODE:
        assert tok.decode(tok.encode(s)) == s
    assert tok.chars == sorted(set("".join(UNICODE)))
    assert tok.encode("") == []


def test_char_unknown_characters_named_in_one_line():
    tok = CharTokenizer("abc ")
    with pytest.raises(UserError) as e:
        tok.encode("a é b € é", what="prompt")
    msg = str(e.value)
    assert msg.startswith("the prompt has characters outside this run's character vocabulary (4 characters)")
    assert "'é'" in msg and "'€'" in msg and "\n" not in msg


def test_char_save_load(tmp_path):
    tok = train_tokenizer("char", iter(["some text\n", "more 🤖"]))
    tok.save(tmp_path / "tokenizer")
    back = load_tokenizer_dir(tmp_path / "tokenizer")
    assert isinstance(back, CharTokenizer) and back.chars == tok.chars
    assert back.encode("more text 🤖") == tok.encode("more text 🤖")
    assert back.fingerprint() == tok.fingerprint()


def test_char_streaming_training_equals_whole():
    chunks = ["abc\n", "xyz", "a\tb"]
    assert train_tokenizer("char", iter(chunks)).chars == train_tokenizer("char", ["".join(chunks)]).chars


def test_char_encode_array_round_trips_a_megabyte():
    text = ("To be, or not to be, that is the question:\n" * 25_000)[:1_000_000]
    tok = train_tokenizer("char", [text])
    ids = tok.encode_array(text)
    assert ids.dtype == np.uint16 and len(ids) == len(text)
    assert tok.decode(ids) == text


def test_bpe_round_trip_unicode(bpe):
    for s in UNICODE + ["unseen bytes \x00\x7f and 🦄 tokens"]:
        assert bpe.decode(bpe.encode(s)) == s


def test_bpe_vocab_size_honoured_and_merges_learned(bpe):
    assert bpe.vocab_size == 400
    assert len(bpe.encode(" the")) == 1  # a frequent word, with its leading space (GPT-2 style), is one token
    sentence = "the quick brown fox jumps over the lazy dog."
    assert len(bpe.encode(sentence)) < len(sentence.encode()) / 2


def test_bpe_save_load(bpe, tmp_path):
    bpe.save(tmp_path)
    back = load_tokenizer_dir(tmp_path)
    assert isinstance(back, BPETokenizer) and back.vocab_size == bpe.vocab_size
    s = "the lazy dog says hello 🤖"
    assert back.encode(s) == bpe.encode(s)
    assert back.fingerprint() == bpe.fingerprint()


def test_bpe_batched_encoding_equals_whole_text(bpe):
    # Long text takes the batched path (cut at safe newlines); it must give the ids of one encode.
    parts = ["the dog\n", "  indented fox\n", "\n\n", "trailing space \n", "tab\t\n", "dog.\n", "x\n \n y",
             "€uro\n", " over\n"]
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(parts, size=3000))
    assert len(text) > 10_000
    assert bpe.encode(text) == bpe.tokenizer.encode(text).ids
    assert "".join(safe_cuts(text)) == text


def test_load_missing_or_corrupt_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no tokenizer in"):
        load_tokenizer_dir(tmp_path / "nope")
    (tmp_path / "char_vocab.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read the character vocabulary") as e:
        load_tokenizer_dir(tmp_path)
    assert "\n" not in str(e.value)
    (tmp_path / "char_vocab.json").unlink()
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(UserError, match="cannot read the BPE tokenizer"):
        load_tokenizer_dir(tmp_path)


def test_unknown_kind_and_bad_ids():
    with pytest.raises(UserError, match="unknown tokenizer 'word'; allowed: char, bpe"):
        train_tokenizer("word", ["x"])
    with pytest.raises(UserError, match="token ids must be in 0..1"):
        CharTokenizer("ab").decode([0, 2])
