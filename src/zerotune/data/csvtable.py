"""Tables from CSV files: numeric features, one-hot encoded categories, a target column.

Rules (kept strict so that a bad table fails loudly rather than training on garbage):

- The first non-blank row is the header; column names must be unique and non-empty, and not all
  numbers (a file without a header is refused, not read with its first row as the names). Blank
  lines, and lines of bare delimiters that spreadsheets append, are skipped.
- The delimiter is sniffed among ``, ; TAB |`` (comma when unsure).
- A cell is *missing* when it is empty or one of ``NA, N/A, NaN, null, ?`` (any case): a UserError
  names its line and column. ``inf`` is rejected the same way. Nothing is imputed.
- A feature column whose every value parses as a number is numeric. Any other feature column is
  categorical and is one-hot encoded, one 0/1 column per distinct value (sorted), named
  ``column=value``; the categories are kept in ``extra["categories"]`` so the same encoding can
  be applied at inference. A categorical column with more than ``max_categories`` values (an id
  or free text, most likely) is a UserError instead.
- Several files (``data.path`` as a list) are one table: their rows are joined in order, and every
  file must have the same header (same names, same order); a UserError names the file that differs.
- Classification targets are label-encoded: class i is ``class_names[i]``, names sorted (numbers
  numerically). ``task="auto"`` picks classification for string targets and for integer targets
  with at most 20 distinct values, regression otherwise.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..errors import UserError, require_file
from .base import RawDataset, paths_of

MISSING = frozenset({"", "na", "n/a", "nan", "null", "?"})
TASKS = ("auto", "classification", "regression")
MAX_AUTO_CLASSES = 20
_SNIFF_BYTES = 64 * 1024


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line_number, cells), ...]) with blank lines dropped and widths checked."""
    require_file(path)  # a directory or a device (/dev/zero) is said to be one, not read without end
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: Excel writes a BOM
            sample = f.read(_SNIFF_BYTES)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
            except csv.Error:
                dialect = csv.excel  # one column, or too little text to tell: assume commas
            reader = csv.reader(f, dialect)
            header = None
            rows = []
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue
                if header is None:
                    header = [c.strip() for c in cells]
                    continue
                if len(cells) != len(header):
                    raise UserError(
                        f"{path}: line {reader.line_num} has {len(cells)} fields; "
                        f"expected {len(header)} like the header"
                    )
                rows.append((reader.line_num, [c.strip() for c in cells]))
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; expected a CSV file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text ({e}); expected a CSV file") from None
    except csv.Error as e:
        raise UserError(f"{path}: malformed CSV ({e})") from None
    if header is None:
        raise UserError(f"{path} is empty; expected a header row and data rows")
    if not rows:
        raise UserError(f"{path} has a header but no data rows")
    if _as_floats(header) is not None:  # a file without a header would lose its first row to the column names
        shown = ", ".join(header[:4]) + (", ..." if len(header) > 4 else "")
        raise UserError(f"{path}: the first row ({shown}) holds only numbers, so it is data, not a header; "
                        "add a first row of column names")
    for i, name in enumerate(header):
        if not name:
            raise UserError(f"{path}: header column {i + 1} has no name")
    dupes = sorted({n for n in header if header.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: duplicate column names in the header: {', '.join(dupes)}")
    return header, rows


def _read_tables(paths: list[Path]) -> tuple[list[str], list[tuple[Path, list[tuple[int, list[str]]]]]]:
    """(header, [(path, rows), ...]) of files that must share one header."""
    header, parts = None, []
    for path in paths:
        own, rows = _read_rows(path)
        if header is None:
            header = own
        elif own != header:
            raise UserError(f"{path}: columns {', '.join(own)} differ from those of {paths[0]}: {', '.join(header)}; "
                            "every file of data.path needs the same header")
        parts.append((path, rows))
    return header, parts


def _as_floats(values: list[str]) -> list[float] | None:
    """All values as floats, or None when any is not a number."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _check_cells(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> None:
    for line, cells in rows:
        for name, cell in zip(header, cells):
            bare = cell.lower().lstrip("+-")  # float() also reads "-nan" and "+inf"
            if cell.lower() in MISSING or bare == "nan":
                raise UserError(
                    f"{path}: line {line}, column {name!r} is missing ({cell!r}); "
                    "fill or drop missing values first"
                )
            if bare in ("inf", "infinity"):
                raise UserError(f"{path}: line {line}, column {name!r} is {cell!r}; expected a finite value")


def _class_order(values: list[str], numbers: list[float] | None) -> list[str]:
    distinct = set(values)
    if numbers is None:
        return sorted(distinct)
    # Sort numerically so that "10" comes after "9"; the name is the value as first written.
    by_number = {}
    for v, n in zip(values, numbers):
        by_number.setdefault(n, v)
    return [by_number[n] for n in sorted(by_number)]


def _encode_target(path: str, target: str, values: list[str], task: str) -> tuple[np.ndarray, list[str] | None, str]:
    """(y, class_names, task) of the target column; "auto" resolved to the task it stands for."""
    numbers = _as_floats(values)
    integral = numbers is not None and all(n.is_integer() for n in numbers)
    if task == "auto":
        few = integral and len(set(numbers)) <= MAX_AUTO_CLASSES
        task = "classification" if numbers is None or few else "regression"
    if task == "regression":
        if numbers is None:
            bad = next(v for v in values if _as_floats([v]) is None)
            raise UserError(
                f"{path}: target {target!r} has non-numeric value {bad!r}; regression needs numbers "
                "(use task classification for labels)"
            )
        with np.errstate(over="ignore"):
            return np.asarray(numbers, dtype=np.float32), None, task
    if numbers is not None and not integral:
        raise UserError(
            f"{path}: target {target!r} has fractional values; classification needs labels "
            "(use task regression for continuous targets)"
        )
    class_names = _class_order(values, numbers)
    if numbers is None:
        index = {name: i for i, name in enumerate(class_names)}
        y = np.array([index[v] for v in values], dtype=np.int64)
    else:
        # Compare as numbers so "1" and "1.0" are the same class.
        index = {float(name): i for i, name in enumerate(class_names)}
        y = np.array([index[n] for n in numbers], dtype=np.int64)
    return y, class_names, task


def _one_hot(path: str, name: str, col: list[str], max_categories: int) -> tuple[np.ndarray, list[str]]:
    """(one 0/1 column per distinct value, the values sorted) of a string column."""
    cats = sorted(set(col))
    if len(cats) > max_categories:
        raise UserError(
            f"{path}: column {name!r} is not numeric and has {len(cats)} distinct values "
            f"(more than {max_categories} to one-hot encode); drop it or make it numeric"
        )
    pos = {c: i for i, c in enumerate(cats)}
    onehot = np.zeros((len(col), len(cats)))
    onehot[np.arange(len(col)), [pos[v] for v in col]] = 1.0
    return onehot, cats


def _encode_features(
    path: str, columns: dict[str, list[str]], max_categories: int
) -> tuple[np.ndarray, list[str], dict[str, list[str]]]:
    """(x float32, feature names, categories) of the feature columns, in file order; string
    columns expand to one-hot blocks."""
    blocks, feature_names, categories = [], [], {}
    for name, col in columns.items():
        nums = _as_floats(col)
        if nums is not None:
            blocks.append(np.asarray(nums, dtype=np.float64)[:, None])
            feature_names.append(name)
            continue
        onehot, categories[name] = _one_hot(path, name, col, max_categories)
        blocks.append(onehot)
        feature_names.extend(f"{name}={c}" for c in categories[name])
    with np.errstate(over="ignore"):  # overflow is reported below, naming the column
        x = np.concatenate(blocks, axis=1).astype(np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0, 1])
        raise UserError(f"{path}: column {feature_names[bad]!r} has values too large for float32")
    return x, feature_names, categories


def load_csv(
    path: str | os.PathLike,
    target: str | None = None,
    task: str = "auto",
    max_categories: int = 50,
) -> RawDataset:
    """Load a CSV table as features and a target.

    Args:
        path: the CSV file (UTF-8, header row first), or a list of files with the same header.
        target: the name of the target column; defaults to the last column.
        task: "auto", "classification" or "regression" (see the module docstring for "auto").
        max_categories: the most distinct values a string feature column may have to be one-hot
            encoded.

    Returns:
        RawDataset with x float32 (N, F), y int64 class indices (classification) or float32
        (regression), ``feature_names`` (after one-hot expansion), ``class_names`` for
        classification, and ``extra["categories"]``: {column: [values in one-hot order]}.

    Raises:
        UserError: unknown task or target, missing values, ragged rows, unusable columns.
    """
    if task not in TASKS:
        raise UserError(f"unknown task {task!r} for a CSV table; allowed: {', '.join(TASKS)}")
    paths = [Path(p) for p in paths_of(path)]
    header, parts = _read_tables(paths)
    path = " + ".join(map(str, paths))  # what the messages below name
    if len(header) < 2:
        raise UserError(f"{path} has {len(header)} column; expected at least one feature and a target")
    target = header[-1] if target is None else target
    if target not in header:
        raise UserError(f"{path} has no column {target!r}; columns: {', '.join(header)}")
    for part, part_rows in parts:
        _check_cells(part, header, part_rows)
    rows = [row for _, part_rows in parts for row in part_rows]
    columns = {name: [cells[i] for _, cells in rows] for i, name in enumerate(header)}
    y, class_names, task = _encode_target(path, target, columns.pop(target), task)
    x, feature_names, categories = _encode_features(path, columns, max_categories)
    if task == "regression" and not np.isfinite(y).all():
        raise UserError(f"{path}: target {target!r} has values too large for float32")
    return RawDataset(
        x=x, y=y, task=task, class_names=class_names, feature_names=feature_names,
        extra={"source": "csv", "path": str(path), "target": target, "categories": categories},
    )  # fmt: skip
