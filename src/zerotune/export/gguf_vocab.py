"""A causal LM's tokenizer as GGUF metadata: llama.cpp's byte-level BPE ("gpt2") with its pre-tokenizer name.

The file carries every token with its type (normal, control for special added tokens, user-defined
for other added tokens, unused for rows of the embedding no token names), the merges, the
pre-tokenizer by the name llama.cpp and transformers' GGUF reader know it by, the special ids, and
the chat template the run formats prompts with. ``eos`` is the token an answer ends with, so that a
GGUF runtime stops where zerotune's answers do; ``eot`` names it too (llama.cpp's end of turn).
Merges, special ids and the template are read by the ``gguf`` package's own `SpecialVocab`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

_PLAIN_BYTE_LEVEL = "gpt-2"  # ByteLevel with GPT-2's own regex


@dataclass
class Vocab:
    """What `add_vocab` writes."""

    tokens: list[str]
    types: list[int]
    pre: str


def vocab_of(tokenizer, vocab_size: int) -> Vocab:
    """The token list, token types and pre-tokenizer name of a byte-level BPE tokenizer.

    Args:
        tokenizer: the run's transformers tokenizer (fast).
        vocab_size: rows of the model's embedding; rows past the tokenizer's last id are unused.

    Raises:
        UserError: a tokenizer that is not byte-level BPE, whose pre-tokenizer has no GGUF name, or with
            more tokens than the model has rows.
    """
    import gguf

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE":
        raise UserError(f"the GGUF writer takes byte-level BPE tokenizers (llama.cpp's 'gpt2'); this one is "
                        f"{spec['model']['type']}")
    n = len(tokenizer)
    if n > vocab_size:
        raise UserError(f"the tokenizer has {n} tokens but the model only {vocab_size} embedding rows")
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    added = set(tokenizer.added_tokens_decoder)
    kinds = gguf.TokenType
    types = [kinds.CONTROL if i in special else kinds.USER_DEFINED if i in added else kinds.NORMAL for i in range(n)]
    tokens = tokenizer.convert_ids_to_tokens(list(range(n)))
    tokens += [f"[PAD{i}]" for i in range(n, vocab_size)]
    types += [kinds.UNUSED] * (vocab_size - n)
    return Vocab(tokens, [int(t) for t in types], pre_tokenizer_name(spec.get("pre_tokenizer")))


def pre_tokenizer_name(pre: dict | None) -> str:
    """llama.cpp's name for a byte-level pre-tokenizer ("gpt-2", "smollm", "qwen2", "llama-bpe", ...)."""
    steps = (pre or {}).get("pretokenizers", [pre] if pre else [])
    kinds = [s["type"] for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return _PLAIN_BYTE_LEVEL
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"  # digits one by one, then GPT-2's regex (SmolLM, StarCoder)
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = steps[0].get("pattern", {}).get("Regex")
        for name, regex in _known_splits().items():
            if regex == pattern:
                return name
    raise UserError(f"the tokenizer's pre-tokenizer ({' + '.join(kinds) or 'none'}) has no name in GGUF files; "
                    "the writer takes byte-level BPE with GPT-2's regex, SmolLM's digits, or the regexes of "
                    f"{', '.join(_known_splits())}")


def _known_splits() -> dict[str, str]:
    """Name -> regex of the split pre-tokenizers transformers' GGUF reader knows (first name of each regex)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    names: dict[str, str] = {}
    for name, regex in GGUF_PRE_TOKENIZER_SPLITS.items():
        if regex not in names.values():
            names[name] = regex
    return names


def add_vocab(writer, tokenizer, tokenizer_dir: Path, vocab_size: int, answer_end: int | None,
              chat_template: str) -> None:
    """Write the tokenizer's metadata (see the module docstring) into a `gguf.GGUFWriter`."""
    import gguf

    vocab = vocab_of(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise UserError(f"no BPE merges found in {tokenizer_dir}'s tokenizer files")
    if answer_end is not None:
        special.special_token_ids.update(eos=answer_end, eot=answer_end)
    special.add_special_token = dict(bos=_adds(tokenizer, tokenizer.bos_token_id),
                                     eos=_adds(tokenizer, tokenizer.eos_token_id))
    special.chat_template = chat_template
    special.add_to_gguf(writer, quiet=True)


def _adds(tokenizer, token_id: int | None) -> bool:
    """Whether the tokenizer puts `token_id` around a text it encodes with its special tokens."""
    with_special = tokenizer("a")["input_ids"]
    return token_id is not None and token_id in with_special and token_id not in tokenizer(
        "a", add_special_tokens=False)["input_ids"]
