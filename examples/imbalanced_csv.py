"""Write a CSV table whose three classes are 85%, 10% and 5% of the rows, for `zerotune doctor`'s class_imbalance.

    python examples/imbalanced_csv.py imbalanced.csv
    zerotune train --set data.name=csv --set data.path=imbalanced.csv --set model.name=mlp --set model.hidden=[32]
"""

import argparse

import numpy as np
from sklearn.datasets import make_classification


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the CSV file to write (8 feature columns, then the class)")
    p.add_argument("--rows", type=int, default=2000, help="rows (default 2000)")
    args = p.parse_args()
    x, y = make_classification(n_samples=args.rows, n_features=8, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               weights=[0.85, 0.10, 0.05], class_sep=0.8, random_state=0)
    header = ",".join([f"x{i}" for i in range(x.shape[1])] + ["label"])
    np.savetxt(args.out, np.column_stack([x, y]), delimiter=",", header=header, comments="", fmt="%.5g")


if __name__ == "__main__":
    main()
