import pytest
import torch
from torch import nn

from zerotune.errors import UserError
from zerotune.models import create_model
from zerotune.lm.sampler import filter_logits
from zerotune.lm.sampling import complete, generate_text, sample_tokens

BS = 8
CHARS = "abcdefgh .é"


class CharTokenizer:
    def __init__(self, chars: str = CHARS):
        self.chars = chars

    def encode(self, text: str) -> list[int]:
        return [self.chars.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class ByteTokenizer:
    """Byte-level: one token per UTF-8 byte; half a character decodes to U+FFFD."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


class ScriptedLM(nn.Module):
    """Writes a fixed script after the prompt, whatever the sampling settings; counts its forward calls."""

    def __init__(self, script: list[int], vocab: int, prompt_len: int):
        super().__init__()
        self.script, self.vocab_size, self.prompt_len = script, vocab, prompt_len
        self.calls = 0
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        self.calls += 1
        B, T = idx.shape
        logits = torch.full((B, T, self.vocab_size), -30.0)
        logits[:, -1, self.script[T - self.prompt_len]] = 30.0
        return logits


def scripted(tokenizer, prompt: str, text: str) -> ScriptedLM:
    vocab = 256 if isinstance(tokenizer, ByteTokenizer) else len(CHARS)
    return ScriptedLM(tokenizer.encode(text), vocab, len(tokenizer.encode(prompt)))


VOCAB = len(CHARS)


def tiny(positions="rope", vocab=VOCAB):
    torch.manual_seed(0)
    model = create_model("gpt", input_shape=(BS,), num_outputs=vocab, n_layer=2, n_head=2, n_embd=16,
                         positions=positions)
    with torch.no_grad():  # large random weights: peaked, well-separated logits
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


def run(model, prompt, n, **kw):
    return list(sample_tokens(model, prompt, n, **kw))


# -- cached == uncached ------------------------------------------------------------------------------


@pytest.mark.parametrize("positions", ["rope", "learned"])
@pytest.mark.parametrize("prompt, n", [([1, 2, 3], 4), ([1, 2, 3], 20), (list(range(10)) + [1, 2], 6)],
                         ids=["within-block", "past-block", "long-prompt"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cached_equals_uncached(positions, prompt, n, temperature):
    model = tiny(positions)
    kw = {"temperature": temperature, "seed": 3}
    cached = run(model, prompt, n, use_cache=True, **kw)
    assert cached == run(model, prompt, n, use_cache=False, **kw)
    assert len(cached) == n


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_cached_path_runs_one_new_token_per_step_until_the_context_is_full(positions):
    model = tiny(positions)
    for prompt_len in (2, 5):
        lengths: list[int] = []
        hook = model.register_forward_pre_hook(lambda m, args, seen=lengths: seen.append(args[0].shape[1]))
        try:
            run(model, list(range(prompt_len)), 12, seed=0)
        finally:
            hook.remove()
        fill = BS - prompt_len  # single-token steps that fit after the prompt
        assert lengths == [prompt_len] + [1] * fill + [BS] * (11 - fill)


def test_uncached_path_reads_the_whole_cropped_context():
    model = tiny()
    lengths = []
    model.register_forward_pre_hook(lambda m, args: lengths.append(args[0].shape[1]))
    run(model, [1, 2, 3], 8, seed=0, use_cache=False)
    assert lengths == [3, 4, 5, 6, 7, 8, 8, 8]


# -- sampling options --------------------------------------------------------------------------------


def test_top_k_1_and_tiny_top_p_are_greedy():
    model = tiny()
    greedy = run(model, [1, 2], 12, temperature=0)
    assert run(model, [1, 2], 12, temperature=1.0, top_k=1, seed=5) == greedy
    assert run(model, [1, 2], 12, temperature=1.0, top_p=1e-6, seed=5) == greedy
    assert run(model, [1, 2], 12, temperature=0, top_k=3, seed=None) == greedy  # greedy ignores filters


def test_seeds_reproduce_and_differ():
    model = tiny()
    a = run(model, [1, 2], 20, seed=0)
    assert a == run(model, [1, 2], 20, seed=0)
    assert a != run(model, [1, 2], 20, seed=1)


def test_filter_logits():
    logits = torch.log(torch.tensor([0.1, 0.5, 0.3, 0.1]))
    kept = lambda out: torch.isfinite(out).nonzero().flatten().tolist()
    assert kept(filter_logits(logits, top_k=2)) == [1, 2]
    assert kept(filter_logits(logits, top_p=0.6)) == [1, 2]  # 0.5 < 0.6 <= 0.8
    assert kept(filter_logits(logits, top_p=0.4)) == [1]  # the most likely token alone reaches it
    assert len(kept(filter_logits(logits, top_p=0.85))) == 3  # 0.8 < 0.85: one of the two 0.1 tokens joins
    assert kept(filter_logits(logits, top_k=3, top_p=0.6)) == [1, 2]
    assert kept(filter_logits(logits, top_k=10)) == [0, 1, 2, 3]


def test_bad_options_are_refused_at_the_call():
    model = tiny()
    for kw, match in [({"prompt_ids": [], "max_new_tokens": 3}, "prompt is empty"),
                      ({"max_new_tokens": 0}, "max_new_tokens"),
                      ({"temperature": -1}, "temperature must be a number >= 0"),
                      ({"temperature": float("nan")}, "temperature"),
                      ({"top_k": 0}, r"top_k must be an integer >= 1"),
                      ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
                      ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
                      ({"prompt_ids": [99]}, "outside the model's vocabulary")]:
        args = {"prompt_ids": [1], "max_new_tokens": 3} | kw
        with pytest.raises(UserError, match=match):
            sample_tokens(model, args.pop("prompt_ids"), args.pop("max_new_tokens"), **args)  # no next() needed
    with pytest.raises(UserError, match="prompt is empty"):
        generate_text(model, CharTokenizer(), "")
    with pytest.raises(UserError, match="stop strings"):
        generate_text(model, CharTokenizer(), "a", stop=[""])


def test_modes_are_restored_after_generation():
    model = tiny(positions="learned")
    model.train()
    model.features.blocks[0].eval()  # e.g. a frozen part stays in eval mode
    before = [m.training for m in model.modules()]
    it = sample_tokens(model, [1, 2], 3, seed=0)
    next(it)
    assert not model.training and torch.is_grad_enabled()  # eval for the duration; grad mode not leaked
    list(it)
    assert [m.training for m in model.modules()] == before
    it = sample_tokens(model, [1, 2], 3, seed=0)
    next(it)
    it.close()  # e.g. a stop string ended generation early
    assert [m.training for m in model.modules()] == before


# -- text --------------------------------------------------------------------------------------------


def test_generate_text_streams_new_text_only():
    model, tok = tiny(), CharTokenizer()
    ids = run(model, tok.encode("abc"), 10, temperature=0.8, seed=1)
    pieces = list(generate_text(model, tok, "abc", max_new_tokens=10, seed=1))
    assert pieces == [tok.decode([i]) for i in ids]  # a char tokenizer: one piece per token
    assert complete(model, tok, "abc", max_new_tokens=10, seed=1) == tok.decode(ids)


def stream(model, tok, prompt, **kw):
    """Greedy pieces and their concatenation."""
    pieces = list(generate_text(model, tok, prompt, temperature=0, **kw))
    return pieces, "".join(pieces)


@pytest.mark.parametrize("stop, expected", [
    (["world"], "hello "),
    (["wor", "lo w"], "hel"),  # the earliest stop wins
    (["d.", "o"], "hell"),
    (["h"], ""),
    (["worx"], "hello world. bye"),  # a partial match is held, then let go
    ("bye", "hello world. "),
])
def test_stop_strings_cut_exactly(stop, expected):
    tok = CharTokenizer("abcdefghijklmnopqrstuvwxyz .")
    text = "hello world. bye"
    model = ScriptedLM(tok.encode(text), 28, 1)
    pieces, out = stream(model, tok, "a", max_new_tokens=len(text), stop=stop)
    assert out == expected
    assert all(pieces)


def test_stop_strings_never_leak_while_streaming():
    tok = CharTokenizer("abcdefghijklmnopqrstuvwxyz .")
    text = "hello world. bye"
    model = ScriptedLM(tok.encode(text), 28, 1)
    seen = []
    for piece in generate_text(model, tok, "a", max_new_tokens=len(text), temperature=0, stop=["wor"]):
        seen.append((piece, model.calls))
    # "w" and "o" are held back until "r" shows the stop string; nothing after "hello " ever comes out
    assert "".join(p for p, _ in seen) == "hello "
    assert seen[-1] == (" ", 6)  # the space went out as soon as it could not start "wor"
    assert model.calls == len("hello wor")  # generation ends at the stop string


def test_held_back_tail_is_let_go_when_it_stops_matching():
    tok = CharTokenizer("abcdefghijklmnopqrstuvwxyz .")
    model = ScriptedLM(tok.encode("ab abc ab"), 28, 1)
    got = []
    for piece in generate_text(model, tok, "a", max_new_tokens=9, temperature=0, stop=["abd"]):
        got.append((piece, model.calls))
    assert "".join(p for p, _ in got) == "ab abc ab"
    # "a", "ab" are held (they could start "abd"); "ab" at the very end is let go when generation ends
    assert got == [("ab ", 3), ("abc", 6), (" ", 7), ("ab", 9)]


def test_incomplete_utf8_is_held_back():
    tok = ByteTokenizer()
    text = "héllo wörld ✓"
    model = scripted(tok, "x", text)
    pieces, out = stream(model, tok, "x", max_new_tokens=len(text.encode()))
    assert out == text
    assert not any("\ufffd" in p for p in pieces)
    assert "é" in pieces and "✓" in pieces
    pieces, out = stream(scripted(tok, "x", text), tok, "x", max_new_tokens=len(text.encode()), stop=["ö"])
    assert out == "héllo w"


def test_generate_with_a_real_model_and_stop():
    model, tok = tiny(), CharTokenizer()
    full = complete(model, tok, "ab", max_new_tokens=30, temperature=0)
    assert len(full) == 30
    stop = full[10:12]
    cut = complete(model, tok, "ab", max_new_tokens=30, temperature=0, stop=[stop])
    assert cut == full[:full.index(stop)]
