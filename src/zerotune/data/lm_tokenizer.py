"""Tokenizers for language-model corpora: characters, or byte-level BPE (GPT-2 style).

Both share one small interface (`LMTokenizer`): ``kind``, ``vocab_size``, ``encode``, ``decode``,
``save``. A run saves its tokenizer in its own ``tokenizer/`` directory, so `generate`, `finetune`
and `serve` encode exactly as training did, with no need for the corpus.

- ``char``: the vocabulary is the sorted set of characters of the corpus. Encoding is a NumPy
  lookup (``searchsorted`` over code points), not a per-character Python loop.
- ``bpe``: byte-level BPE trained with the `tokenizers` library (Sennrich et al. 2016, byte-level as
  in GPT-2). Its initial alphabet is all 256 bytes, so every string encodes; there is no unknown token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..run.atomic import atomic_write_text

CHAR_FILE = "char_vocab.json"
BPE_FILE = "tokenizer.json"
KINDS = ("char", "bpe")
# Token arrays are stored as uint16, so no vocabulary may be larger.
MAX_VOCAB = 65536
# A newline right after a non-space character always starts a new BPE pre-token, so text cut
# there encodes to exactly the same ids as uncut text (see `safe_cuts`).
_SAFE_CUT = re.compile(r"(?<=\S)(?=\n)")
_BATCH_CHARS = 4096  # characters per item of a BPE encode batch (measured: faster than lines or 64 KiB)


class LMTokenizer:
    """The interface both tokenizers share."""

    kind: str = ""

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str, what: str = "text") -> list[int]:
        """Token ids of `text`; `what` names the text in error messages (e.g. "prompt")."""
        return self.encode_array(text, what).tolist()

    def encode_array(self, text: str, what: str = "text") -> np.ndarray:
        """Token ids of `text` as a uint16 array (the fast path for whole corpora)."""
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError

    def save(self, directory: str | Path) -> None:
        """Write the tokenizer into `directory` (created if needed); `load_tokenizer_dir` reads it."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A string that changes whenever the encoding changes (part of the token-cache key)."""
        raise NotImplementedError


class CharTokenizer(LMTokenizer):
    """One token per character; the vocabulary is a sorted list of distinct characters."""

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ValueError("a character vocabulary is a non-empty list of distinct single characters")
        if len(chars) > MAX_VOCAB:
            raise UserError(f"the corpus has {len(chars)} distinct characters; the char tokenizer allows at most "
                            f"{MAX_VOCAB}; use data.tokenizer=bpe")
        self.chars = sorted(chars)
        # Sorted code points: encoding is a binary search of every character at once.
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode_array(self, text: str, what: str = "text") -> np.ndarray:
        # surrogatepass: a str may hold lone surrogates; they are then reported as unknown characters.
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = np.searchsorted(self._codes, codes)
        ids[ids == len(self._codes)] = 0
        unknown = self._codes[ids] != codes
        if unknown.any():
            shown = list(dict.fromkeys(chr(c) for c in codes[unknown][:1000]))[:5]
            raise UserError(f"the {what} has characters outside this run's character vocabulary "
                            f"({self.vocab_size} characters): {', '.join(map(repr, shown))}")
        return ids.astype(np.uint16)

    def decode(self, ids) -> str:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise UserError(f"token ids must be in 0..{self.vocab_size - 1} for this character vocabulary, "
                            f"got {int(ids.min() if ids.min() < 0 else ids.max())}")
        return self._codes[ids].tobytes().decode("utf-32-le", "surrogatepass")

    def save(self, directory: str | Path) -> None:
        text = json.dumps({"kind": "char", "chars": self.chars}, ensure_ascii=False)
        atomic_write_text(Path(directory) / CHAR_FILE, text)

    def fingerprint(self) -> str:
        return "char:" + "".join(self.chars)

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """The vocabulary of every character in `texts` (chunks; only the set is kept in memory)."""
        seen: set[str] = set()
        for chunk in texts:
            seen.update(chunk)  # set.update over a str runs in C: fast even for big chunks
        if not seen:
            raise UserError("cannot build a character vocabulary from an empty text")
        return cls(seen)


class BPETokenizer(LMTokenizer):
    """Byte-level BPE: a `tokenizers.Tokenizer` with a ByteLevel pre-tokenizer and decoder."""

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode_array(self, text: str, what: str = "text") -> np.ndarray:
        if len(text) <= _BATCH_CHARS:
            return np.asarray(self.tokenizer.encode(text).ids, dtype=np.uint16)
        # Cut at newlines that cannot change the encoding and encode the pieces as one batch: the
        # library spreads a batch over all cores. Pieces of a few KiB (not single lines) keep the
        # per-item overhead low; encode_batch_fast skips the offsets we never use.
        encodings = self.tokenizer.encode_batch_fast(list(_batched(safe_cuts(text), _BATCH_CHARS)))
        return np.concatenate([np.asarray(e.ids, dtype=np.uint16) for e in encodings])

    def decode(self, ids) -> str:
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        if ids and (min(ids) < 0 or max(ids) >= self.vocab_size):
            raise UserError(f"token ids must be in 0..{self.vocab_size - 1} for this BPE vocabulary")
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def save(self, directory: str | Path) -> None:
        atomic_write_text(Path(directory) / BPE_FILE, self.tokenizer.to_str())

    def fingerprint(self) -> str:
        return "bpe:" + self.tokenizer.to_str()

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        """Learn merges from `texts` (an iterator of chunks, so the corpus need not fit in memory).

        The vocabulary is the 256 byte symbols plus up to ``vocab_size - 256`` merges; a small
        corpus can end with fewer, since merges stop when no pair repeats.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if not 257 <= vocab_size <= MAX_VOCAB:
            raise UserError(f"data.vocab_size must be in 257..{MAX_VOCAB} for BPE (256 bytes + merges), "
                            f"got {vocab_size}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      special_tokens=[], show_progress=False)
        # Pieces cut at safe newlines: the trainer counts words per piece, so nothing is lost.
        tok.train_from_iterator((p for chunk in texts for p in _batched(safe_cuts(chunk), 1 << 16)), trainer=trainer)
        return cls(tok)


def safe_cuts(text: str) -> list[str]:
    """`text` cut before each newline that follows a non-space character.

    No byte-level pre-token spans such a point (GPT-2's pattern has no look-behind, and the token
    before the cut ends in a non-space), so encoding the pieces gives the ids of the whole text.
    """
    return _SAFE_CUT.split(text)


def _batched(pieces: list[str], size: int) -> Iterable[str]:
    """Join pieces back into strings of about `size` characters (fewer, larger items to the trainer)."""
    buf, n = [], 0
    for p in pieces:
        buf.append(p)
        n += len(p)
        if n >= size:
            yield "".join(buf)
            buf, n = [], 0
    if buf:
        yield "".join(buf)


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int = 1024) -> LMTokenizer:
    """Train a tokenizer of `kind` on `texts`, an iterable of text chunks read one at a time.

    Args:
        kind: "char" or "bpe".
        texts: chunks of the training text (cut at newlines, ideally).
        vocab_size: BPE vocabulary size; ignored by "char", whose vocabulary is the corpus's characters.

    Returns:
        The trained tokenizer.
    """
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "bpe":
        return BPETokenizer.train(texts, vocab_size)
    raise UserError(f"unknown tokenizer {kind!r}; allowed: {', '.join(KINDS)}")


def load_tokenizer_dir(directory: str | Path) -> LMTokenizer:
    """Load what `LMTokenizer.save` wrote into `directory`.

    Raises:
        UserError: the directory or its tokenizer file is missing or unreadable.
    """
    directory = Path(directory)
    char_file, bpe_file = directory / CHAR_FILE, directory / BPE_FILE
    if char_file.is_file():
        try:
            data = json.loads(char_file.read_text(encoding="utf-8"))
            if data.get("kind") != "char":
                raise ValueError(f"kind is {data.get('kind')!r}, expected 'char'")
            return CharTokenizer(data["chars"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"cannot read the character vocabulary {char_file}: {_first_line(e)}") from None
    if bpe_file.is_file():
        from tokenizers import Tokenizer

        try:
            return BPETokenizer(Tokenizer.from_file(str(bpe_file)))
        except Exception as e:  # noqa: BLE001 - the library raises a bare Exception for malformed JSON
            raise UserError(f"cannot read the BPE tokenizer {bpe_file}: {_first_line(e)}") from None
    raise UserError(f"no tokenizer in {directory}: it needs {CHAR_FILE} or {BPE_FILE}, as written by a corpus run")


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]

