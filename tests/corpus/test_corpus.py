"""Corpus reading, splitting, token caching and the windows of TokenSplit."""

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from zerotune.config import DataConfig
from zerotune.data.corpus import (
    TokenSplit,
    _widen,
    build_corpus_data,
    corpus_files,
    iter_corpus_text,
    split_bounds,
)
from zerotune.data.lm_tokenizer import CharTokenizer
from zerotune.errors import UserError

SHAKESPEARE = Path(__file__).resolve().parents[2] / "data" / "tinyshakespeare.txt"
TEXT = "".join(f"line {i}: the cat sat on the mat, naïve café №{i % 7}\n" for i in range(300))


def cfg_for(path, tmp_path, **kw) -> DataConfig:
    kw = {"val_fraction": 0.1, "test_fraction": 0.1, "block_size": 16, **kw}
    return DataConfig(name="corpus", path=str(path), cache_dir=str(tmp_path / "cache"), **kw)


@pytest.fixture
def corpus(tmp_path) -> Path:
    p = tmp_path / "corpus.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def decode_all(bundle, tok) -> dict[str, str]:
    return {s: tok.decode(np.asarray(bundle.split(s).tokens)) for s in ("train", "val", "test")}


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_file_splits_in_order_and_decode_back(corpus, tmp_path, kind):
    bundle, tok = build_corpus_data(cfg_for(corpus, tmp_path, tokenizer=kind, vocab_size=300))
    parts = decode_all(bundle, tok)
    assert parts["train"] + parts["val"] + parts["test"] == TEXT
    b = split_bounds(len(TEXT), 0.1, 0.1)
    assert parts["val"] == TEXT[b["val"][0]:b["val"][1]] and parts["test"] == TEXT[b["test"][0]:]  # val/test: the tail
    assert len(parts["val"]) == round(len(TEXT) * 0.1) and len(parts["train"]) == int(len(TEXT) * 0.8)
    meta = bundle.meta
    assert (meta.source, meta.task, meta.input_shape, meta.num_classes) == ("corpus", "lm", [16], tok.vocab_size)
    assert meta.sizes == {s: bundle.split(s).n_tokens for s in ("train", "val", "test")}
    for s in ("train", "val", "test"):
        assert bundle.split(s).tokens.dtype == np.uint16
    assert isinstance(bundle.train.tokens, np.memmap)
    assert len(bundle.train) == bundle.train.n_tokens // 16 and len(bundle.val) == bundle.val.n_tokens // 16


def test_folder_concatenates_sorted_txt_files(tmp_path):
    root = tmp_path / "books"
    (root / "b").mkdir(parents=True)
    (root / "b" / "two.txt").write_text("second file\n" * 40)
    (root / "a.txt").write_text("first file\n" * 40)
    (root / "notes.md").write_text("not read")
    assert [p.name for p in corpus_files(root)] == ["a.txt", "two.txt"]
    bundle, tok = build_corpus_data(cfg_for(root, tmp_path, test_fraction=0.0, block_size=4))
    assert "".join(decode_all(bundle, tok).values()) == "first file\n" * 40 + "\n" + "second file\n" * 40
    assert "m" not in tok.chars  # notes.md was not read


def test_a_list_of_paths_reads_each_in_the_order_given(tmp_path):
    (tmp_path / "a.txt").write_text("first file\n" * 40)
    (tmp_path / "b.txt").write_text("second file\n" * 40)
    paths = [str(tmp_path / "b.txt"), str(tmp_path / "a.txt")]
    assert [p.name for p in corpus_files(paths)] == ["b.txt", "a.txt"]
    cfg = DataConfig(name="corpus", path=paths, cache_dir=str(tmp_path / "cache"), val_fraction=0.1, block_size=4,
                     test_fraction=0.0)
    bundle, tok = build_corpus_data(cfg)
    assert "".join(decode_all(bundle, tok).values()) == "second file\n" * 40 + "\n" + "first file\n" * 40


def test_chunked_reading_handles_multibyte_characters_across_chunks(tmp_path):
    p = tmp_path / "u.txt"
    text = "ab€🤖\n  cé\n" * 50 + "no newline at the end 🤖"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())  # with a byte order mark, which is dropped
    for chunk in (1, 3, 7, 64):
        assert "".join(t for _, t in iter_corpus_text([p], chunk_bytes=chunk)) == text


@pytest.mark.parametrize("content", ["", "  \n\t\n  "])
def test_empty_or_whitespace_file(tmp_path, content):
    p = tmp_path / "empty.txt"
    p.write_text(content)
    with pytest.raises(UserError, match=r"corpus file .*empty\.txt holds no text"):
        build_corpus_data(cfg_for(p, tmp_path))


def test_binary_file_named_with_offset(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"hello world\n" * 3 + b"\x00\x01\x02")
    with pytest.raises(UserError, match=r"model\.bin looks binary \(NUL byte at byte offset 36\)") as e:
        build_corpus_data(cfg_for(p, tmp_path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("chunk", [5, 1 << 20])
def test_invalid_utf8_named_with_offset(tmp_path, chunk):
    p = tmp_path / "latin1.txt"
    p.write_bytes("caf€ ok\n".encode() * 3 + b"caf\xe9 latin-1\n")
    with pytest.raises(UserError, match=r"latin1\.txt is not valid UTF-8 \(byte 0xe9 at byte offset 33\)"):
        list(iter_corpus_text([p], chunk_bytes=chunk))


def test_missing_path_and_folder_without_txt(tmp_path):
    with pytest.raises(UserError, match="does not exist; data.path must be a UTF-8 text file or a folder of .txt"):
        build_corpus_data(cfg_for(tmp_path / "nope.txt", tmp_path))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="has no .txt files"):
        build_corpus_data(cfg_for(tmp_path / "d", tmp_path))


def test_block_size_too_large_and_no_val(corpus, tmp_path):
    with pytest.raises(UserError, match=r"data.block_size 3000 does not fit the validation split \(\d+ tokens, "
                                        r"a window needs 3001\); lower data.block_size or raise data.val_fraction"):
        build_corpus_data(cfg_for(corpus, tmp_path, block_size=3000))
    with pytest.raises(UserError, match="the training split .* or use a larger corpus"):
        build_corpus_data(cfg_for(corpus, tmp_path, block_size=3000, val_fraction=0.85, test_fraction=0.0))
    with pytest.raises(UserError, match=r"corpus data needs data.val_fraction > 0 for validation loss"):
        build_corpus_data(cfg_for(corpus, tmp_path, val_fraction=0.0))


def test_no_test_split_is_empty_not_an_error(corpus, tmp_path):
    bundle, _ = build_corpus_data(cfg_for(corpus, tmp_path, test_fraction=0.0))
    assert bundle.test.n_tokens == 0 and len(bundle.test) == 0 and bundle.meta.sizes["test"] == 0
    assert list(bundle.test.iter_sequential(4)) == []


# -- cache and tokenizers --------------------------------------------------------------------


def test_cache_reused_and_invalidated(corpus, tmp_path):
    cfg = cfg_for(corpus, tmp_path)
    first, _ = build_corpus_data(cfg)
    train_file = Path(first.train.tokens.filename)
    stamp = train_file.stat().st_mtime_ns
    again, _ = build_corpus_data(cfg)
    assert Path(again.train.tokens.filename) == train_file and train_file.stat().st_mtime_ns == stamp
    corpus.write_text(TEXT + "one more line\n", encoding="utf-8")
    changed, _ = build_corpus_data(cfg)
    assert Path(changed.train.tokens.filename).parent != train_file.parent
    assert changed.meta.sizes["train"] + changed.meta.sizes["val"] + changed.meta.sizes["test"] == len(TEXT) + 14
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_given_tokenizer_is_used_and_unknown_characters_name_the_file(corpus, tmp_path):
    parent = CharTokenizer(sorted(set(TEXT) | {"Z"}))
    bundle, tok = build_corpus_data(cfg_for(corpus, tmp_path), tokenizer=parent)
    assert tok is parent and bundle.meta.num_classes == len(parent.chars)
    with pytest.raises(UserError, match=r"the corpus file .*corpus\.txt has characters outside this run's "
                                        r"character vocabulary \(3 characters\): "):
        build_corpus_data(cfg_for(corpus, tmp_path), tokenizer=CharTokenizer("abc"))


# -- windows ---------------------------------------------------------------------------------


@pytest.fixture
def split() -> TokenSplit:
    return TokenSplit(np.arange(1000, dtype=np.uint16) % 251, block_size=8, windows_per_epoch=50)


def test_epoch_batches_deterministic_and_shifted(split):
    b = split.epoch_batches(seed=3, epoch=2, batch_size=16)
    assert len(b) == 4 and b[3][0].shape == (2, 8)  # the last batch is smaller
    x, y = b[1]
    assert x.dtype == torch.long and x.shape == (16, 8) and torch.equal(x[:, 1:], y[:, :-1])
    again = split.epoch_batches(seed=3, epoch=2, batch_size=16)
    assert torch.equal(again[1][0], x)  # batch 1 alone, without batch 0: exact resume
    other = split.epoch_batches(seed=3, epoch=3, batch_size=16)
    assert not torch.equal(other[1][0], x)
    with pytest.raises(IndexError):
        b[4]
    assert sum(1 for _ in b) == 4


def test_window_starts_cover_the_range():
    split = TokenSplit(np.arange(30, dtype=np.uint16), block_size=5, windows_per_epoch=2000)
    starts = np.concatenate([x[:, 0].numpy() for x, _ in split.epoch_batches(0, 0, 500)])
    assert set(starts) == set(range(25))  # 0 .. n_tokens - block_size - 1: the last window ends at the last token


def test_fixed_windows_stable_and_capped(split):
    x1, y1 = split.fixed_windows(20)
    x2, _ = split.fixed_windows(20)
    assert x1.shape == (20, 8) and torch.equal(x1, x2) and torch.equal(x1[:, 1:], y1[:, :-1])
    small = TokenSplit(np.arange(12, dtype=np.uint16), block_size=8, windows_per_epoch=1)
    x, _ = small.fixed_windows(100)
    assert sorted(x[:, 0].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("n", [1000, 17, 9, 2, 1])
def test_iter_sequential_scores_every_token_once(n):
    tokens = (np.arange(n, dtype=np.uint16) * 7) % 65000
    split = TokenSplit(tokens, block_size=8, windows_per_epoch=1)
    batches = list(split.iter_sequential(batch_size=5))
    xs = np.concatenate([x.reshape(-1).numpy() for x, _ in batches]) if batches else np.zeros(0)
    ys = np.concatenate([y.reshape(-1).numpy() for _, y in batches]) if batches else np.zeros(0)
    assert np.array_equal(xs, tokens[:-1]) and np.array_equal(ys, tokens[1:])
    assert all(x.shape == y.shape and x.shape[1] <= 8 for x, y in batches)


def test_sample_inputs_and_to(split):
    assert split.sample_inputs(3).shape == (3, 8)
    moved = split.to("cpu")
    assert moved.device == torch.device("cpu") and moved.tokens is split.tokens and len(moved) == 50


def test_widen_keeps_ids_above_32767():
    ids = np.array([0, 1, 32767, 32768, 65535], dtype=np.uint16)
    assert _widen(torch.from_numpy(ids.view(np.int16))).tolist() == ids.tolist()


# -- the real corpus -------------------------------------------------------------------------


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason="tinyshakespeare.txt not available")
def test_tinyshakespeare_char(tmp_path):
    cfg = cfg_for(SHAKESPEARE, tmp_path, test_fraction=0.0, block_size=256)
    t = time.perf_counter()
    bundle, tok = build_corpus_data(cfg)
    first = time.perf_counter() - t
    t = time.perf_counter()
    build_corpus_data(cfg)
    cached = time.perf_counter() - t
    print(f"tinyshakespeare char build: {first:.3f} s, cached: {cached:.4f} s")
    assert tok.vocab_size == 65
    assert bundle.meta.sizes == {"train": 1_003_854, "val": 111_540, "test": 0}  # as nanoGPT's shakespeare_char
    assert len(bundle.train) == 1_003_854 // 256
    x, _ = bundle.train.epoch_batches(1337, 0, 12)[0]
    assert x.shape == (12, 256) and int(x.max()) < 65
