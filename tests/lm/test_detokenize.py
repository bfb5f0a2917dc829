"""The incremental detokenizer: joined, its pieces are the decoding of all tokens at once, for character,
byte, byte-level BPE and SentencePiece-style tokenizers, on random ids and on unicode text; it decodes
a few trailing tokens per step, not the whole text."""

import random

import pytest

from zerotune.data.lm_tokenizer import train_tokenizer
from zerotune.lm.detokenize import CONTEXT, Detokenizer, TextStream

TEXTS = ["plain ascii text, with spaces.", "héllo wörld ✓ naïve café", "日本語のテキストと emoji 😀🎉 mixed",
         "tabs\tand\nnewlines  double  spaces", "ünïcödé ∑∫√ ≠ ≤ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "a"]


class Bytes:
    """One token per UTF-8 byte; a cut character decodes to U+FFFD, as byte-level decoders do."""

    vocab_size = 256

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(ids).decode("utf-8", errors="replace")


class Counting:
    """A tokenizer's decode that remembers the longest list of ids it was given."""

    def __init__(self, decode):
        self.inner, self.longest = decode, 0

    def __call__(self, ids):
        self.longest = max(self.longest, len(ids))
        return self.inner(ids)


def _hf_tokenizer(kind: str):
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = TEXTS * 20
    if kind == "byte-level":  # GPT-2's scheme
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:  # Llama's: "▁" for spaces, bytes for what the vocabulary lacks, the first space dropped
        tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                      initial_alphabet=list("abcdefghijklmnopqrstuvwxyz ▁"))
        tok.train_from_iterator(corpus, trainer)
        tok.add_tokens([f"<0x{b:02X}>" for b in range(256)])  # byte fallback's tokens
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


class HF:
    def __init__(self, kind):
        self.tok = _hf_tokenizer(kind)
        self.vocab_size = len(self.tok)

    def encode(self, text):
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids):
        return self.tok.decode(ids, skip_special_tokens=True)


@pytest.fixture(scope="module", params=["char", "bytes", "bpe", "byte-level", "sentencepiece"])
def tokenizer(request):
    if request.param == "char":
        return train_tokenizer("char", TEXTS)
    if request.param == "bytes":
        return Bytes()
    if request.param == "bpe":  # a zerotune run's own BPE
        return train_tokenizer("bpe", TEXTS * 20, 300)
    return HF(request.param)


def _pieces(decode, ids, context=()):
    detok = Detokenizer(decode, context)
    return [detok.push(t) for t in ids] + [detok.flush()]


def test_pieces_of_unicode_text_join_to_its_decoding(tokenizer):
    for text in TEXTS:
        ids = tokenizer.encode(text)
        counting = Counting(tokenizer.decode)
        pieces = _pieces(counting, ids)
        assert "".join(pieces) == tokenizer.decode(ids), text
        assert not any("\ufffd" in p for p in pieces), text  # a character is given out whole
        assert counting.longest <= 8  # a complete character's tokens and those of the piece before it


def test_pieces_of_random_ids_join_to_their_decoding(tokenizer):
    rng = random.Random(0)
    for _ in range(60):
        ids = [rng.randrange(tokenizer.vocab_size) for _ in range(rng.randint(1, 40))]
        assert "".join(_pieces(tokenizer.decode, ids)) == tokenizer.decode(ids), ids


def test_after_a_prompt_the_pieces_continue_its_decoding(tokenizer):
    rng = random.Random(1)
    for text in TEXTS:
        prompt, ids = tokenizer.encode("start " + text[:3]), tokenizer.encode(text[3:] + " end")
        if not ids:
            continue
        counting = Counting(tokenizer.decode)
        joined = "".join(_pieces(counting, ids, prompt))
        assert tokenizer.decode(prompt) + joined == tokenizer.decode(prompt + ids), text
        assert counting.longest <= CONTEXT + 4
        garbage = [rng.randrange(tokenizer.vocab_size) for _ in range(30)]
        whole, start = tokenizer.decode(prompt + garbage), tokenizer.decode(prompt)
        if whole.startswith(start):  # the prompt's decoding is not changed by what follows it
            assert start + "".join(_pieces(tokenizer.decode, garbage, prompt)) == whole


def test_text_stream_cuts_before_a_stop_string_and_holds_a_partial_one():
    tok = Bytes()
    stream = TextStream(tok.decode, (), ["wö", "xyz"])
    shown = [stream.push(t) for t in tok.encode("héllo xy wörld")]
    assert "".join(shown) == "héllo xy " and stream.stopped
    assert shown[tok.encode("héllo x").__len__() - 1] == ""  # "x" could start "xyz": held until the space
