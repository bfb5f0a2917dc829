"""Tables for the from-scratch models: built-in scikit-learn datasets or a CSV file.

Everything here returns float64 NumPy arrays, because the gradient checks and the comparison with
the closed-form solution need float64 precision. Bad input (text in a numeric column, NaNs,
mismatched shapes) is reported as a `UserError` that names the column or the array.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

#: Built-in datasets: name -> (scikit-learn loader name, task).
BUILTIN = {
    "diabetes": ("load_diabetes", "regression"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "digits": ("load_digits", "classification"),
}


@dataclass
class Table:
    """A feature matrix and a target, as loaded.

    Attributes:
        X: features, float64, shape (m, F).
        y: targets, shape (m,): float64 for regression, int64 class indices for classification.
        feature_names: one name per column of X.
        target_name: name of the target column.
        task: "regression" or "classification".
        class_names: one name per class index (classification only).
        source: the dataset name or CSV path it came from.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    task: str
    class_names: list[str] | None = None
    source: str = ""


@dataclass
class Split:
    """A seeded train/test split, standardised with statistics of the training rows only.

    Attributes:
        X_train, X_test, y_train, y_test: the split arrays (X standardised when `mean` is set).
        X_train_raw, X_test_raw: the same rows before standardisation.
        mean, std: per-column statistics of the training rows, or None without standardisation.
    """

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    X_train_raw: np.ndarray
    X_test_raw: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


def as_float_matrix(X, name: str = "X") -> np.ndarray:
    """Convert features to a finite float64 matrix of shape (m, F).

    A 1-D array is taken as a single feature, so ``[2, 4, 6]`` becomes a (3, 1) matrix.

    Raises:
        UserError: when X is not numeric, not 1-D/2-D, empty, or holds NaN/inf.
    """
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise UserError(f"{name} is not numeric ({e})") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise UserError(f"{name} must be a 2-D array (rows, features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise UserError(f"{name} is empty (shape {arr.shape})")
    _require_finite(arr, name)
    return arr


def as_target(y, n_rows: int, task: str, name: str = "y") -> np.ndarray:
    """Convert a target to shape (m,): float64 for regression, int64 labels for classification.

    Raises:
        UserError: when y is not numeric, has the wrong length or shape, holds NaN/inf, or (for
            classification) holds non-integer values or fewer than two classes.
    """
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise UserError(f"{name} is not numeric ({e})") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise UserError(f"{name} must be 1-D (one target per row), got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise UserError(
            f"X and {name} do not match: X has {n_rows} rows but {name} has {arr.shape[0]}"
        )
    _require_finite(arr, name)
    if task == "regression":
        return arr
    if not np.all(arr == np.round(arr)) or arr.min() < 0:
        raise UserError(f"{name} must hold class indices 0, 1, 2, ... for classification")
    labels = arr.astype(np.int64)
    if len(np.unique(labels)) < 2:
        raise UserError(f"{name} has a single class; classification needs at least two")
    return labels


def _require_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        kind = "NaN" if np.isnan(arr).any() else "infinite values"
        raise UserError(
            f"{name} contains {kind} in {len(rows)} row(s) (first: row {rows[0]}); "
            "remove or impute them first"
        )


def load_table(data: str, target: str | None = None, features: list[str] | None = None) -> Table:
    """Load a built-in dataset by name or a CSV file by path.

    Args:
        data: one of `BUILTIN` or a path to a CSV file with a header row.
        target: the target column (CSV only).
        features: keep only these columns, by name or 0-based index (e.g. ``["bmi"]`` to get a
            one-feature problem whose loss surface can be drawn).

    Returns:
        The table with float64 features.

    Raises:
        UserError: for an unknown dataset, a missing file or column, or bad values.
    """
    if data in BUILTIN:
        if target is not None:
            raise UserError(
                f"--target applies to CSV files; {data} is built in and has its own target"
            )
        table = _load_builtin(data)
    elif data.lower().endswith(".csv") or Path(data).exists():
        table = _load_csv(Path(data), target)
    else:
        raise UserError(
            f"unknown dataset {data!r}: use one of {', '.join(BUILTIN)} or a path to a .csv file"
        )
    if features:
        table = _select_features(table, features)
    return table


def _load_builtin(name: str) -> Table:
    import sklearn.datasets

    loader_name, task = BUILTIN[name]
    loader = getattr(sklearn.datasets, loader_name)
    # Diabetes comes pre-scaled by default; the raw units show why standardisation matters.
    bunch = loader(scaled=False) if name == "diabetes" else loader()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    names = [str(n) for n in getattr(bunch, "feature_names", [f"x{i}" for i in range(X.shape[1])])]
    if task == "classification":
        return Table(X, y.astype(np.int64), names, "target", task,
                     [str(c) for c in bunch.target_names], name)
    return Table(X, y.astype(np.float64), names, "target", task, None, name)


def _load_csv(path: Path, target: str | None) -> Table:
    if not path.exists():
        raise UserError(f"data file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path} as a CSV file ({e})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise UserError(f"{path} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if target is None:
        raise UserError(
            f"--target is required with a CSV file; columns of {path}: {', '.join(header)}"
        )
    if target not in header:
        raise UserError(f"target column {target!r} not in {path}; columns: {', '.join(header)}")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise UserError(f"{path} line {i} has {len(r)} fields but the header has {len(header)}")
    t = header.index(target)
    cols = [c for c in range(len(header)) if c != t]
    if not cols:
        raise UserError(f"{path} has no feature columns besides the target {target!r}")
    X = np.empty((len(rows) - 1, len(cols)))
    for j, c in enumerate(cols):
        X[:, j] = _parse_column(path, header[c], [r[c] for r in rows[1:]])
    raw_target = [r[t].strip() for r in rows[1:]]
    if "" in raw_target:
        line = raw_target.index("") + 2
        raise UserError(f"target column {target!r} in {path} has an empty value on line {line}")
    # Text labels are fine for classification; regression rejects them later (as_regression).
    y = _parse_column(path, target, raw_target) if all(map(_is_number, raw_target)) else None
    names = [header[c] for c in cols]
    if y is not None:
        return Table(X, y, names, target, "regression", None, str(path))
    classes = sorted(set(raw_target))
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[v] for v in raw_target], dtype=np.int64)
    return Table(X, labels, names, target, "classification", classes, str(path))


def _parse_column(path: Path, name: str, cells: list[str]) -> np.ndarray:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        text = cell.strip()
        try:
            out[i] = float(text) if text else math.nan
        except ValueError:
            raise UserError(
                f"column {name!r} in {path} is not numeric: line {i + 2} holds {text!r}"
            ) from None
    missing = np.isnan(out)
    if missing.any():
        raise UserError(
            f"column {name!r} in {path} has {int(missing.sum())} missing/NaN value(s) "
            f"(first on line {int(np.argmax(missing)) + 2}); remove or impute them first"
        )
    return out


def _select_features(table: Table, features: list[str]) -> Table:
    idx = []
    for f in features:
        if f in table.feature_names:
            idx.append(table.feature_names.index(f))
        elif f.isdigit() and int(f) < len(table.feature_names):
            idx.append(int(f))
        else:
            raise UserError(
                f"feature {f!r} not found; available: {', '.join(table.feature_names)}"
            )
    return Table(table.X[:, idx], table.y, [table.feature_names[i] for i in idx],
                 table.target_name, table.task, table.class_names, table.source)


#: Most distinct whole-number values a numeric target may hold to be read as class labels.
MAX_NUMERIC_CLASSES = 100


def as_classification(table: Table) -> Table:
    """Check a table can be used for classification and return labels as 0..K-1.

    Raises:
        UserError: when the target is continuous.
    """
    if table.task == "classification":
        return table
    y = table.y
    # A numeric CSV column is read as class labels when it holds few distinct whole numbers.
    if (table.source not in BUILTIN and np.all(y == np.round(y))
            and len(np.unique(y)) <= MAX_NUMERIC_CLASSES):
        values = np.unique(y)
        labels = np.searchsorted(values, y).astype(np.int64)
        names = [f"{v:g}" for v in values]
        return Table(table.X, labels, table.feature_names, table.target_name,
                     "classification", names, table.source)
    raise UserError(
        f"target {table.target_name!r} of {table.source} is continuous; "
        "use `scratch linreg` for regression"
    )


def as_regression(table: Table) -> Table:
    """Check a table has a numeric target usable for regression.

    Raises:
        UserError: when the target holds text labels.
    """
    if table.task == "regression":
        return table
    if table.class_names is not None and not all(_is_number(c) for c in table.class_names):
        raise UserError(
            f"target {table.target_name!r} of {table.source} holds class labels; "
            "use `scratch logreg` or `scratch mlp` for classification"
        )
    return Table(table.X, table.y.astype(np.float64), table.feature_names, table.target_name,
                 "regression", None, table.source)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def split(
    X: np.ndarray,
    y: np.ndarray,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    standardize: bool = True,
    stratify: bool = False,
) -> Split:
    """Split rows into train and test with a seeded shuffle, then optionally standardise.

    The mean and standard deviation come from the training rows only, so nothing about the test
    rows leaks into training. Constant columns keep a standard deviation of 1 instead of 0.

    Args:
        X: features (m, F).
        y: targets (m,).
        test_size: fraction of rows held out, in (0, 1).
        seed: seed of the shuffle.
        standardize: subtract the training mean and divide by the training std.
        stratify: keep class proportions equal in both parts (classification).

    Raises:
        UserError: when test_size is out of range or leaves a part empty.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise UserError(f"test_size must be between 0 and 1, got {test_size}")
    m = X.shape[0]
    n_test = math.ceil(test_size * m)
    if n_test < 1 or m - n_test < 2:
        raise UserError(f"{m} rows are too few to split with test_size={test_size}")
    if stratify:
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            raise UserError(
                f"class {labels[counts.argmin()]} has a single row; every class needs at least "
                "two rows to appear in both the training and the test split"
            )
    try:
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=test_size, random_state=seed, stratify=y if stratify else None
        )
    except ValueError as e:
        raise UserError(f"cannot split the data: {e}") from None
    if not standardize:
        return Split(X_tr, X_te, y_tr, y_te, X_tr, X_te)
    mean, std = standardization_stats(X_tr)
    return Split((X_tr - mean) / std, (X_te - mean) / std, y_tr, y_te, X_tr, X_te, mean, std)


def standardization_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation; constant columns get std 1 to avoid dividing by 0."""
    mean, std = X.mean(axis=0), X.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)
