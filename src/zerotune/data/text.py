"""Text classification files (TSV, CSV, JSONL) tokenised with a model's own tokenizer.

Each split becomes one int64 tensor of token ids, (N, T), right-padded with -1 up to the longest
sequence of the data (at most ``data.max_length``). Longer texts are truncated, and how many were
cut in each split is printed and kept in the metadata (``truncated``). Models cut every batch down
to its own longest sequence, which is dynamic padding with plain tensor slicing.

``data.path`` (and ``data.test_path``) may name several files: their examples are joined in order.

A file may have a header naming ``data.text_field`` and ``data.label_field``; without one the
first column is the text and the last the label (as in ``sentence<TAB>label``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .base import paths_of
from .bundle import DataBundle, DataMeta, Split
from .preprocess import check_classes, limit_per_class, split_indices

PAD = -1
FORMATS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}


def read_text_file(path: str | Path, text_field: str = "text", label_field: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels (as strings) of a TSV, CSV or JSONL file.

    Raises:
        UserError: missing file, unknown suffix, missing fields or empty texts.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"text file {path} does not exist")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"text file {path}: unknown format {path.suffix!r}; allowed: {', '.join(FORMATS)}")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if kind == "jsonl":
        texts, labels = _jsonl(path, lines, text_field, label_field)
    else:
        texts, labels = _table(path, lines, "\t" if kind == "tsv" else ",", text_field, label_field)
    if not texts:
        raise UserError(f"text file {path} holds no examples")
    return texts, labels


def read_text_files(paths: str | list[str], text_field: str = "text",
                    label_field: str = "label") -> tuple[list[str], list[str]]:
    """Texts and labels of one file or of several, joined in order (see `read_text_file`)."""
    texts, labels = [], []
    for path in paths_of(paths):
        t, l = read_text_file(path, text_field, label_field)
        texts += t
        labels += l
    return texts, labels


def _jsonl(path, lines, text_field, label_field):
    texts, labels = [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{i} is not valid JSON: {e.msg}") from None
        if not isinstance(row, dict) or text_field not in row or label_field not in row:
            raise UserError(f"{path}:{i} needs the keys {text_field!r} and {label_field!r} (data.text_field, data.label_field)")
        texts.append(str(row[text_field]))
        labels.append(_label(row[label_field]))
    return texts, labels


def _table(path, lines, delimiter, text_field, label_field):
    rows = [r for r in csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE)
            if r and any(c.strip() for c in r)]
    if not rows:
        return [], []
    header = [c.strip() for c in rows[0]]
    if text_field in header and label_field in header:
        ti, li, rows = header.index(text_field), header.index(label_field), rows[1:]
    else:
        ti, li = 0, -1
    texts, labels = [], []
    for i, r in enumerate(rows, 1):
        if len(r) < 2:
            raise UserError(f"{path}: row {i} has {len(r)} column; a text and a label are needed")
        texts.append(r[ti])
        labels.append(_label(r[li]))
    return texts, labels


def _label(value) -> str:
    return str(value).strip()


def label_order(labels: list[str]) -> list[str]:
    """Class names in a stable order: numerically when every label is an integer, else alphabetically."""
    unique = set(labels)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)


def load_tokenizer(directory: str | Path):
    """A model directory's own tokenizer, loaded offline."""
    from ..models.hf import check_tokenizer, quiet_transformers

    directory = Path(directory)
    check_tokenizer(directory)
    quiet_transformers()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load the tokenizer in {directory}: {str(e).splitlines()[0]}") from None


def tokenize(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text, with the model's special tokens, truncated to `max_length`."""
    return tokenize_counted(tokenizer, texts, max_length)[0]


def tokenize_counted(tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], np.ndarray]:
    """Like `tokenize`, and which texts were truncated (a bool per text).

    Texts are tokenised whole first, so the long ones are known; only those are tokenised again
    with the tokenizer's own truncation, which keeps its special tokens at the end.
    """
    texts = list(texts)
    ids = tokenizer(texts)["input_ids"] if texts else []
    cut = np.array([len(seq) > max_length for seq in ids], dtype=bool)
    if cut.any():
        long = np.flatnonzero(cut)
        again = tokenizer([texts[i] for i in long], truncation=True, max_length=max_length)["input_ids"]
        for i, seq in zip(long, again):
            ids[i] = seq
    return ids, cut


def pad_ids(ids: list[list[int]], length: int) -> torch.Tensor:
    out = torch.full((len(ids), length), PAD, dtype=torch.long)
    for i, seq in enumerate(ids):
        out[i, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def build_text_data(cfg, tokenizer) -> DataBundle:
    """Train/val/test token-id splits of a text file (``data.name = "text"``).

    Args:
        cfg: the DataConfig: path (training file or files), test_path (optional test file or files), text_field,
            label_field, max_length, val_fraction, test_fraction, split_seed, classes, train_per_class.
        tokenizer: the model's tokenizer (see `load_tokenizer`).

    Raises:
        UserError: bad files, or labels in the test file that the training file does not have.
    """
    if not cfg.path:
        raise UserError("data set 'text' reads a file: set data.path (TSV, CSV or JSONL with text and label)")
    texts, labels = read_text_files(cfg.path, cfg.text_field, cfg.label_field)
    names = label_order(labels)
    index = {n: i for i, n in enumerate(names)}
    y = np.array([index[v] for v in labels], dtype=np.int64)
    x_ids, x_cut = tokenize_counted(tokenizer, texts, cfg.max_length)

    if cfg.test_path:
        t_texts, t_labels = read_text_files(cfg.test_path, cfg.text_field, cfg.label_field)
        unseen = sorted(set(t_labels) - set(names))
        if unseen:
            raise UserError(f"data.test_path {cfg.test_path}: labels {', '.join(map(repr, unseen))} are not in the "
                            f"training data (its labels: {', '.join(map(repr, names))})")
        train_idx, val_idx, _ = split_indices(y, (cfg.val_fraction, 0.0), cfg.split_seed, True)
        test_ids, test_cut = tokenize_counted(tokenizer, t_texts, cfg.max_length)
        y_test = np.array([index[v] for v in t_labels])
    else:
        train_idx, val_idx, test_idx = split_indices(y, (cfg.val_fraction, cfg.test_fraction), cfg.split_seed, True)
        test_ids, y_test, test_cut = [x_ids[i] for i in test_idx], y[test_idx], x_cut[test_idx]

    if cfg.classes is not None:
        names, y, y_test = _select(cfg.classes, names, y, y_test)
        train_idx, val_idx = train_idx[y[train_idx] >= 0], val_idx[y[val_idx] >= 0]
        keep = y_test >= 0
        test_ids, y_test, test_cut = [s for s, k in zip(test_ids, keep) if k], y_test[keep], test_cut[keep]
    check_classes(y[y >= 0], names, f"text file {cfg.path}",
                  f"data.classes = {cfg.classes}" if cfg.classes is not None else "is data.label_field the right field?")
    if cfg.train_per_class is not None:
        train_idx = limit_per_class(train_idx, y, cfg.train_per_class, cfg.split_seed)
    if len(train_idx) == 0:
        raise UserError(f"text file {cfg.path} leaves no training examples after splitting")

    parts = {"train": ([x_ids[i] for i in train_idx], y[train_idx]), "val": ([x_ids[i] for i in val_idx], y[val_idx]),
             "test": (test_ids, y_test)}
    length = max((len(s) for ids, _ in parts.values() for s in ids), default=1)
    splits = {k: Split(pad_ids(ids, length), torch.from_numpy(np.asarray(t, dtype=np.int64))) for k, (ids, t) in parts.items()}
    truncated = {"train": int(x_cut[train_idx].sum()), "val": int(x_cut[val_idx].sum()), "test": int(test_cut.sum())}
    sizes = {k: len(s) for k, s in splits.items()}
    _report_truncated(truncated, sizes, cfg.max_length)
    meta = DataMeta(source="text", task="classification", input_shape=[length], num_classes=len(names),
                    class_names=list(names), sizes=sizes, truncated=truncated)
    return DataBundle(splits["train"], splits["val"], splits["test"], meta)


def _report_truncated(truncated: dict[str, int], sizes: dict[str, int], max_length: int) -> None:
    """One line on stderr when any text was cut: a silently shortened text can change its label."""
    parts = [f"{n} of {sizes[k]} {k}" for k, n in truncated.items() if n]
    if parts:
        print(f"warning: texts longer than data.max_length={max_length} tokens were truncated: "
              f"{', '.join(parts)} examples", file=sys.stderr, flush=True)


def _select(classes: list[int], names: list[str], y: np.ndarray, y_test: np.ndarray):
    if len(set(classes)) != len(classes) or any(not 0 <= c < len(names) for c in classes):
        raise UserError(f"data.classes must be distinct class indices in 0..{len(names) - 1}, got {classes}")
    lut = np.full(len(names), -1, dtype=np.int64)
    lut[classes] = np.arange(len(classes))
    return [names[c] for c in classes], lut[y], lut[y_test]
