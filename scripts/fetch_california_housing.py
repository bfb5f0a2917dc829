"""Write scikit-learn's California housing data as the CSV that recipes/california_housing.toml reads.

    python scripts/fetch_california_housing.py

scikit-learn downloads the data (cal_housing.tgz, about 400 kB, checked against its SHA-256) into
``--data-home`` on the first call and reads it from there afterwards; this script then writes one
CSV with the eight features and the target ``MedHouseVal`` (median house value, $100,000s).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = "MedHouseVal"


def write_csv(features, target, feature_names, out: Path) -> Path:
    """Write rows of ``features`` and ``target`` under a header, to a temporary name then renamed into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow([*feature_names, TARGET])
            for row, y in zip(features, target):
                writer.writerow([repr(float(v)) for v in row] + [repr(float(y))])
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def fetch(out: Path, data_home: Path) -> Path:
    """Fetch (or read from ``data_home``) the California housing data and write it to ``out`` as CSV."""
    from sklearn.datasets import fetch_california_housing

    bunch = fetch_california_housing(data_home=str(data_home))
    return write_csv(bunch.data, bunch.target, bunch.feature_names, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "california_housing.csv",
                   help="the CSV to write (default: data/california_housing.csv, where the recipe looks)")
    p.add_argument("--data-home", type=Path, default=ROOT / "data" / "scikit_learn_data",
                   help="scikit-learn's download cache (default: data/scikit_learn_data)")
    args = p.parse_args(argv)
    path = fetch(args.out, args.data_home)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
