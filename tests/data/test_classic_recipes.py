"""The classic recipes, end to end, on small files in the real formats written here.

MNIST, Fashion-MNIST and California housing cannot be downloaded in the test suite, so each
recipe runs as written except for ``data.path`` (a folder of gzipped IDX files, or a CSV with the
columns scikit-learn's fetcher gives) and a short budget. The images carry a learnable pattern
(a bright square whose place is the class), so accuracy must rise well above chance.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from zerotune.cli.main import main
from zerotune.config import load_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
QUIET = ["log.progress=false", "log.tensorboard=false", "train.threads=1"]


def train_recipe(recipe: str, runs, *overrides: str, name: str | None = None) -> dict:
    """Run ``zerotune train RECIPE`` as a user would, with overrides; return the run's metrics.json."""
    name = name or Path(recipe).stem
    args = ["train", str(RECIPES / recipe), "--runs-dir", str(runs), "--name", name]
    assert main(args + [a for o in (*QUIET, *overrides) for a in ("--set", o)]) == 0
    return json.loads((Path(runs) / name / "metrics.json").read_text(encoding="utf-8"))

CELL = 7  # 28 / 4: a 4 x 4 grid of squares, the first ten of which name the ten classes


def pattern_images(n: int, seed: int, size: int = 28, channels: int = 0):
    """(images uint8, labels uint8): noise with a bright square at grid cell ``label``.

    ``channels=0`` gives (n, size, size) IDX images; ``channels=3`` gives (n, 3, size, size) with the
    square lit in channel ``label % 3`` only.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    shape = (n, channels, size, size) if channels else (n, size, size)
    x = rng.integers(0, 80, size=shape, dtype=np.uint8)
    cell = size // 4
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        rows, cols = slice(r * cell, (r + 1) * cell), slice(c * cell, (c + 1) * cell)
        if channels:
            x[i, k % 3, rows, cols] = 255
        else:
            x[i, rows, cols] = 255
    return x, y.astype(np.uint8)


@pytest.fixture
def idx_folder(tmp_path, idx_writer):
    """A folder with the four MNIST-format files, gzipped as the download gives them: 400 train, 100 test."""
    folder = tmp_path / "idx"
    folder.mkdir()
    for split, prefix, n in (("train", "train", 400), ("test", "t10k", 100)):
        x, y = pattern_images(n, seed=0 if split == "train" else 1)
        idx_writer(folder / f"{prefix}-images-idx3-ubyte.gz", x, gz=True)
        idx_writer(folder / f"{prefix}-labels-idx1-ubyte.gz", y, gz=True)
    return folder


@pytest.mark.parametrize("recipe, steps, floor", [
    ("mnist_mlp.toml", 60, 0.9),
    ("mnist_cnn.toml", 30, 0.5),
    ("fashion_mnist_cnn.toml", 30, 0.5),
])
def test_mnist_recipes_learn_from_idx_files(recipe, steps, floor, idx_folder, tmp_path):
    metrics = train_recipe(recipe, tmp_path / "runs", f"data.path={idx_folder}", "data.download=false",
                           f"train.max_steps={steps}", "train.batch_size=32")
    assert metrics["test"]["n"] == 100  # the official test files, whole
    assert metrics["test"]["accuracy"] >= floor > 0.1  # chance is 0.1


def test_mnist_recipes_read_the_shared_download_folder():
    # mnist_mlp and mnist_cnn share one download; each classic recipe fetches into data/, never ../shared.
    paths = {r: load_config(RECIPES / r).data for r in ("mnist_mlp.toml", "mnist_cnn.toml", "fashion_mnist_cnn.toml")}
    assert paths["mnist_mlp.toml"].path == paths["mnist_cnn.toml"].path == str(ROOT / "data" / "mnist")
    assert paths["fashion_mnist_cnn.toml"].path == str(ROOT / "data" / "fashion_mnist")
    assert all(d.download for d in paths.values())


def test_mnist_mlp_is_128_relu_units_and_adam():
    cfg = load_config(RECIPES / "mnist_mlp.toml")
    assert (cfg.model.name, cfg.model.options["hidden"], cfg.model.options["activation"]) == ("mlp", [128], "relu")
    assert cfg.optim.name == "adam"


# -- house prices ------------------------------------------------------------------------------

COLUMNS = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]


def housing_like(n: int, seed: int = 0):
    """Features in the ranges of the real table and a smooth, partly nonlinear target."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([
        rng.uniform(0.5, 15, n), rng.integers(1, 52, n), rng.uniform(2, 9, n), rng.uniform(0.8, 1.5, n),
        rng.integers(3, 5000, n), rng.uniform(1, 6, n), rng.uniform(32.5, 42, n), rng.uniform(-124.3, -114.3, n),
    ])
    y = 0.4 * x[:, 0] + 0.3 * np.sin(x[:, 6] - 34) - 0.05 * x[:, 5] + rng.normal(0, 0.1, n)
    return x, np.clip(y, 0.15, 5.0)


def test_fetch_script_writes_the_csv_the_recipe_reads(tmp_path):
    import runpy

    script = runpy.run_path(str(ROOT / "scripts" / "fetch_california_housing.py"))
    x, y = housing_like(5)
    out = script["write_csv"](x, y, COLUMNS, tmp_path / "sub" / "california_housing.csv")
    header, *rows = out.read_text(encoding="utf-8").splitlines()
    assert header.split(",") == COLUMNS + ["MedHouseVal"] and len(rows) == 5
    assert float(rows[0].split(",")[0]) == x[0, 0]  # written with every digit
    assert [p.name for p in out.parent.iterdir()] == ["california_housing.csv"]  # no temporary file left


def test_california_housing_recipe_fits_a_csv_of_the_same_columns(tmp_path, capsys):
    import runpy

    write_csv = runpy.run_path(str(ROOT / "scripts" / "fetch_california_housing.py"))["write_csv"]
    csv = write_csv(*housing_like(1500), COLUMNS, tmp_path / "california_housing.csv")
    metrics = train_recipe("california_housing.toml", tmp_path / "runs", f"data.path={csv}", "train.epochs=15")
    assert metrics["test"]["r2"] > 0.8
    run = tmp_path / "runs" / "california_housing"
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["r2"] == pytest.approx(metrics["test"]["r2"])
