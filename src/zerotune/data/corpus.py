"""Language-model data: a UTF-8 text file or folder → tokens → memory-mapped arrays → windows.

The corpus is read in chunks (never whole), split by position into train | val | test (the tail
becomes val then test, as in nanoGPT), tokenised split by split into flat uint16 files under a
cache directory, and memory-mapped. A training epoch is ``windows_per_epoch`` windows of
``block_size + 1`` tokens drawn at random starts; validation uses fixed windows for a cheap,
low-noise estimate and every token exactly once (`TokenSplit.iter_sequential`) for the final loss.

Token files are keyed by the corpus files (paths, sizes, mtimes), the split fractions and the
tokenizer, so a second run on the same corpus maps them at once and an edited corpus is re-tokenised.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..run.atomic import publish_dir, temporary_dir
from .batches import epoch_generator
from .bundle import DataBundle, DataMeta
from .chat import TEMPLATE_CHARS
from .lm_tokenizer import LMTokenizer, load_tokenizer_dir, train_tokenizer

CHUNK_BYTES = 4 << 20  # read size: memory stays bounded by a few chunks whatever the corpus size
SPLITS = ("train", "val", "test")
CACHE_VERSION = 1  # bump when the token file layout or the reading rules change
ALLOWED = "data.path must be a UTF-8 text file or a folder of .txt files (or a list of these)"


# -- reading ---------------------------------------------------------------------------------


def corpus_files(path: str | Path | list) -> list[Path]:
    """The files of a corpus: `path` itself, or every ``*.txt`` under the folder (recursive, sorted).

    A list of paths (``data.path = [...]``) gives the files of each, in the order given.

    Raises:
        UserError: the path does not exist, or the folder holds no .txt file.
    """
    if isinstance(path, (list, tuple)):
        return [f for p in path for f in corpus_files(p)]
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted((p for p in path.rglob("*.txt") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
        if not files:
            raise UserError(f"corpus folder {path} has no .txt files; {ALLOWED}")
        return files
    raise UserError(f"corpus path {path} does not exist; {ALLOWED}")


def iter_corpus_text(files: list[Path], chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[Path, str]]:
    """Yield ``(file, text)`` chunks of the concatenated corpus, files joined with one "\\n".

    Raises:
        UserError: a file holds a NUL byte or is not valid UTF-8 (naming the file and byte offset).
    """
    for k, f in enumerate(files):
        if k:
            yield f, "\n"
        yield from _iter_file(f, chunk_bytes)


def _iter_file(path: Path, chunk_bytes: int) -> Iterator[tuple[Path, str]]:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, carry, at_start = 0, "", True  # offset: bytes of the file read so far
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk_bytes)
            nul = block.find(b"\0")
            if nul >= 0:
                raise UserError(f"corpus file {path} looks binary (NUL byte at byte offset {offset + nul}); {ALLOWED}")
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous block
            try:
                text = carry + decoder.decode(block, final=not block)
            except UnicodeDecodeError as e:
                bad = e.object[e.start] if e.start < len(e.object) else None
                what = f"byte 0x{bad:02x}" if bad is not None else "a truncated character"
                raise UserError(f"corpus file {path} is not valid UTF-8 ({what} at byte offset "
                                f"{offset - pending + e.start}); {ALLOWED}") from None
            if at_start and text:  # a byte order mark (some editors write one) is not text
                text, at_start = text.removeprefix("\ufeff"), False
            offset += len(block)
            if not block:
                if text:
                    yield path, text
                return
            cut = _line_cut(text)
            if cut > 0:
                yield path, text[:cut]
            carry = text[cut:]


def _line_cut(text: str) -> int:
    """Where to end a chunk: before the last newline that follows a non-space (a safe BPE cut).

    Falls back to after the last newline, then to the whole text (a file without newlines).
    """
    i = text.rfind("\n")
    last = i
    for _ in range(1000):  # only runs of blank lines make this loop; stop early on pathological text
        if i <= 0 or not text[i - 1].isspace():
            break
        i = text.rfind("\n", 0, i)
    if i > 0 and not text[i - 1].isspace():
        return i
    return last + 1 if last >= 0 else len(text)


@dataclass
class CorpusScan:
    n_chars: int
    chars: set[str] | None  # only gathered for a character vocabulary


def scan_corpus(files: list[Path], collect_chars: bool, chunk_bytes: int = CHUNK_BYTES) -> CorpusScan:
    """Validate every file and count the corpus's characters (and gather them if asked).

    Raises:
        UserError: binary or invalid files, or a corpus with no text but whitespace.
    """
    n, has_text, chars = 0, False, set() if collect_chars else None
    for _, text in iter_corpus_text(files, chunk_bytes):
        n += len(text)
        has_text = has_text or (bool(text) and not text.isspace())  # isspace stops at the first letter
        if chars is not None:
            chars.update(text)
    if not has_text:
        where = f"corpus file {files[0]}" if len(files) == 1 else f"the {len(files)} .txt files of the corpus folder"
        raise UserError(f"{where} holds no text (empty or only whitespace); {ALLOWED} with some text in it")
    return CorpusScan(n, chars)


def split_bounds(n_chars: int, val_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """Character ranges of train | val | test: contiguous, in that order, val and test at the tail.

    The training part is ``int(n * (1 - val - test))`` characters, as nanoGPT's ``int(n * 0.9)``,
    so a 0.1/0 split gives the same train/val text as nanoGPT's shakespeare_char.
    """
    n_train = int(n_chars * (1 - val_fraction - test_fraction))
    n_test = min(round(n_chars * test_fraction), n_chars - n_train)
    n_val = n_chars - n_train - n_test
    return {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n_chars)}


def iter_split_text(files: list[Path], bounds: dict[str, tuple[int, int]],
                    chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[str, Path, str]]:
    """Yield ``(split, file, text)`` pieces of the corpus in order, cut at the split bounds."""
    pos = 0
    for path, text in iter_corpus_text(files, chunk_bytes):
        start, pos = pos, pos + len(text)
        for name, (lo, hi) in bounds.items():
            a, b = max(lo, start), min(hi, pos)
            if a < b:
                yield name, path, text[a - start:b - start]


# -- tokenising into the cache ---------------------------------------------------------------


def cache_root(cache_dir: str | None = None) -> Path:
    """Where token arrays live: `cache_dir`, else ``$XDG_CACHE_HOME/zerotune/tokens``, else ``~/.cache/...``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zerotune" / "tokens"


def _source_key(files: list[Path], val_fraction: float, test_fraction: float, *extra) -> dict:
    stats = []
    for f in files:
        st = f.stat()
        stats.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return {"version": CACHE_VERSION, "files": stats, "val_fraction": val_fraction,
            "test_fraction": test_fraction, "extra": list(extra)}


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]


def corpus_tokenizer(files: list[Path], kind: str, vocab_size: int, val_fraction: float, test_fraction: float,
                     root: Path, chunk_bytes: int = CHUNK_BYTES,
                     extra_chars: str = "") -> tuple[LMTokenizer, CorpusScan | None]:
    """The tokenizer a run trains on this corpus, cached beside the token arrays, and the scan
    of the corpus if one was needed (None on a cache hit).

    A character vocabulary covers the WHOLE corpus: a character that only occurs in the val or
    test tail must still be encodable, and knowing a character exists leaks nothing a model could
    learn from. BPE merges are learned from the training split only, so the val/test loss is
    measured on text the merges never saw (any byte sequence still encodes). `extra_chars` join a
    character vocabulary even when the corpus lacks them (the chat template's, ``data.chat_chars``).
    """
    extra = extra_chars if kind == "char" else ""
    key = _hash(_source_key(files, val_fraction, test_fraction, kind, vocab_size if kind == "bpe" else 0,
                            *([extra] if extra else [])))
    final = root / f"tokenizer-{key}"
    if final.is_dir():
        try:
            return load_tokenizer_dir(final), None
        except UserError:
            shutil.rmtree(final, ignore_errors=True)  # a damaged cache entry is rebuilt, not reported
    if kind == "char":
        scan = scan_corpus(files, True, chunk_bytes)
        tok = train_tokenizer("char", ["".join(scan.chars) + extra])
    else:
        scan = scan_corpus(files, False, chunk_bytes)
        bounds = split_bounds(scan.n_chars, val_fraction, test_fraction)
        train = (t for name, _, t in iter_split_text(files, bounds, chunk_bytes) if name == "train")
        tok = train_tokenizer(kind, train, vocab_size)
    tmp = temporary_dir(final)
    tok.save(tmp)
    publish_dir(tmp, final)
    return tok, scan


def tokenize_corpus(files: list[Path], tokenizer: LMTokenizer | None, kind: str, vocab_size: int,
                    val_fraction: float, test_fraction: float, root: Path, chunk_bytes: int = CHUNK_BYTES,
                    extra_chars: str = "") -> tuple[dict[str, np.ndarray], LMTokenizer]:
    """Token arrays of the three splits, memory-mapped from the cache (built there on first use).

    Args:
        files: the corpus files (see `corpus_files`).
        tokenizer: a tokenizer to reuse (a continued run uses its parent's), or None to train one.
        kind, vocab_size: what to train when `tokenizer` is None.
        extra_chars: characters a trained character vocabulary holds beyond the corpus's.
        val_fraction, test_fraction: split fractions of the corpus characters.
        root: the cache directory.

    Returns:
        ``({"train": uint16 array, "val": ..., "test": ...}, tokenizer)``.
    """
    scan = None
    if tokenizer is None:
        tokenizer, scan = corpus_tokenizer(files, kind, vocab_size, val_fraction, test_fraction, root, chunk_bytes,
                                           extra_chars)
    if tokenizer.vocab_size > 65536:
        raise UserError(f"the tokenizer has {tokenizer.vocab_size} tokens; token arrays allow at most 65536")
    final = root / _hash(_source_key(files, val_fraction, test_fraction, tokenizer.fingerprint()))
    if not all((final / f"{s}.bin").is_file() for s in SPLITS):
        scan = scan or scan_corpus(files, False, chunk_bytes)
        bounds = split_bounds(scan.n_chars, val_fraction, test_fraction)
        tmp = temporary_dir(final)
        try:
            sizes = _write_tokens(files, bounds, tokenizer, tmp, chunk_bytes)
            info = {"files": [str(f) for f in files], "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
                    "val_fraction": val_fraction, "test_fraction": test_fraction, "tokens": sizes,
                    "chars": {s: hi - lo for s, (lo, hi) in bounds.items()}}
            (tmp / "info.json").write_text(json.dumps(info, indent=1, ensure_ascii=False), encoding="utf-8")
            # An incomplete entry (a file removed by hand) goes; a complete one is another process's
            # (two ranks of one job build the same cache at once), which it may be reading already.
            if final.exists() and not all((final / f"{s}.bin").is_file() for s in SPLITS):
                shutil.rmtree(final, ignore_errors=True)
            publish_dir(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {s: _open_tokens(final / f"{s}.bin") for s in SPLITS}, tokenizer


def _write_tokens(files, bounds, tokenizer: LMTokenizer, out: Path, chunk_bytes: int) -> dict[str, int]:
    sizes = dict.fromkeys(SPLITS, 0)
    with ExitStack() as stack:
        handles = {s: stack.enter_context(open(out / f"{s}.bin", "wb")) for s in SPLITS}
        for name, path, text in iter_split_text(files, bounds, chunk_bytes):
            ids = tokenizer.encode_array(text, what=f"corpus file {path}")
            handles[name].write(ids.astype("<u2", copy=False).tobytes())
            sizes[name] += len(ids)
    return sizes


def _open_tokens(path: Path) -> np.ndarray:
    # mmap cannot map an empty file; an empty split (test_fraction 0) is an empty array instead.
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype="<u2", mode="r")


# -- windows ---------------------------------------------------------------------------------


def _widen(t: torch.Tensor) -> torch.Tensor:
    """int16 tensor holding uint16 bit patterns → int64 token ids."""
    return t.long() & 0xFFFF


def _to_device(arr: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint16 host array → int64 tensor on `device`, with one host copy."""
    if device.type == "cpu":
        return torch.from_numpy(arr.astype(np.int64))
    # Ship 2 bytes a token and widen on the device; int16 is a dtype every backend copies.
    t = torch.from_numpy(np.ascontiguousarray(arr).view(np.int16))
    if device.type == "cuda":
        t = t.pin_memory()
    return _widen(t.to(device, non_blocking=device.type == "cuda"))


@dataclass
class TokenSplit:
    """One split of a corpus as flat tokens; its "examples" are windows of ``block_size`` tokens.

    The tokens stay memory-mapped on the host; batches are gathered from them and created on
    ``device``.
    """

    tokens: np.ndarray  # (N,) uint16, usually a read-only np.memmap
    block_size: int
    windows_per_epoch: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __len__(self) -> int:
        return self.windows_per_epoch

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def n_starts(self) -> int:
        """How many distinct window starts there are (a window needs block_size + 1 tokens)."""
        return max(0, self.n_tokens - self.block_size)

    def to(self, device) -> TokenSplit:
        return replace(self, device=torch.device(device))

    def _check_windows(self) -> None:
        if self.n_starts == 0:
            raise UserError(f"a split of {self.n_tokens} tokens has no window of block_size + 1 = "
                            f"{self.block_size + 1} tokens; lower data.block_size")

    def gather(self, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows at `starts`: ``(x, y)``, both (len(starts), block_size), y shifted by one token."""
        idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(self.block_size + 1)  # (B, T+1)
        xy = _to_device(np.asarray(self.tokens[idx]), self.device)
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()  # contiguous: losses call .view(-1)

    def epoch_batches(self, seed: int, epoch: int, batch_size: int) -> WindowBatches:
        """The batches of one epoch: windows at uniform random starts drawn from (seed, epoch) alone.

        Args:
            seed: the run's seed.
            epoch: the epoch number; batch i of epoch e is the same whatever ran before.
            batch_size: windows per batch (the last batch may be smaller).

        Returns:
            `WindowBatches`: ``len()`` batches, ``[i] -> (x, y)`` LongTensors (B, block_size).
        """
        self._check_windows()
        starts = torch.randint(0, self.n_starts, (self.windows_per_epoch,), generator=epoch_generator(seed, epoch))
        return WindowBatches(self, starts.numpy(), batch_size)

    def fixed_windows(self, count: int, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` windows at fixed distinct pseudo-random starts, the same at every call.

        Used for periodic validation: the same windows each time make successive estimates comparable.
        `count` is capped at the number of distinct starts.
        """
        self._check_windows()
        count = min(count, self.n_starts)
        starts = np.random.default_rng(seed).choice(self.n_starts, size=count, replace=False)
        return self.gather(np.sort(starts))  # sorted: neighbouring reads in the memmap

    def iter_sequential(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Non-overlapping windows from the start, so every token after the first is a target once.

        Full windows come in batches of `batch_size`; the remainder (1 ≤ T' < block_size targets)
        follows as its own batch of shape (1, T'). An empty split yields nothing.
        """
        T, pairs = self.block_size, max(0, self.n_tokens - 1)
        full = pairs // T
        for a in range(0, full, batch_size):
            n = min(batch_size, full - a)
            lo = a * T
            xy = np.asarray(self.tokens[lo:lo + n * T + 1])
            yield _to_device(xy[:-1].reshape(n, T), self.device), _to_device(xy[1:].reshape(n, T), self.device)
        rest = pairs - full * T
        if rest:
            tail = np.asarray(self.tokens[full * T:])  # rest + 1 tokens
            yield _to_device(tail[None, :-1], self.device), _to_device(tail[None, 1:], self.device)

    def sample_inputs(self, n: int) -> torch.Tensor:
        """The first `n` non-overlapping windows' inputs, (n, block_size) (for model-shape checks)."""
        n = max(1, min(n, max(1, (self.n_tokens - 1) // self.block_size)))
        T = self.block_size
        x = np.asarray(self.tokens[:n * T])
        if len(x) < n * T:  # a split shorter than one window: pad with token 0 to keep the shape
            x = np.concatenate([x, np.zeros(n * T - len(x), dtype=np.uint16)])
        return _to_device(x.reshape(n, T), self.device)


@dataclass
class WindowBatches:
    """The batches of one epoch of `TokenSplit.epoch_batches`: ``len()`` and ``[i] -> (x, y)``."""

    split: TokenSplit
    starts: np.ndarray  # (windows_per_epoch,) int64
    batch_size: int

    def __len__(self) -> int:
        return (len(self.starts) + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} of {len(self)}")
        return self.split.gather(self.starts[i * self.batch_size:(i + 1) * self.batch_size])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


# -- the bundle ------------------------------------------------------------------------------


def build_corpus_data(cfg, tokenizer: LMTokenizer | None = None) -> tuple[DataBundle, LMTokenizer]:
    """Train/val/test `TokenSplit`s of a text corpus (``data.name = "corpus"``).

    Args:
        cfg: the DataConfig: path, val_fraction, test_fraction, tokenizer, vocab_size, block_size,
            windows_per_epoch, cache_dir. split_seed is not used: the split is by position.
        tokenizer: reuse this tokenizer (a continued run passes its parent's); None trains one.

    Returns:
        ``(bundle, tokenizer)``; ``bundle.meta.sizes`` counts tokens per split.

    Raises:
        UserError: unreadable corpus, no validation split, or a block size larger than a split.
    """
    if not cfg.path:
        raise UserError(f"corpus data reads text: set data.path; {ALLOWED}")
    if cfg.val_fraction <= 0:
        raise UserError("corpus data needs data.val_fraction > 0 for validation loss")
    files = corpus_files(cfg.path)
    arrays, tokenizer = tokenize_corpus(files, tokenizer, cfg.tokenizer, cfg.vocab_size, cfg.val_fraction,
                                        cfg.test_fraction, cache_root(cfg.cache_dir),
                                        extra_chars=TEMPLATE_CHARS if cfg.chat_chars else "")
    T = cfg.block_size
    for name, label, fix in (("train", "training", "use a larger corpus"),
                             ("val", "validation", "raise data.val_fraction")):
        if len(arrays[name]) <= T:
            raise UserError(f"data.block_size {T} does not fit the {label} split ({len(arrays[name])} tokens, a window "
                            f"needs {T + 1}); lower data.block_size or {fix}")
    n = {s: len(a) for s, a in arrays.items()}
    per_epoch = {"train": cfg.windows_per_epoch or max(1, n["train"] // T),
                 "val": max(1, n["val"] // T), "test": max(1, n["test"] // T) if n["test"] else 0}
    splits = {s: TokenSplit(arrays[s], T, per_epoch[s]) for s in SPLITS}
    meta = DataMeta(source="corpus", task="lm", input_shape=[T], num_classes=tokenizer.vocab_size, sizes=n)
    return DataBundle(splits["train"], splits["val"], splits["test"], meta), tokenizer
