"""The CIFAR-10 recipes and the fine-tuning walkthrough, end to end, on small CIFAR batch files.

CIFAR-10 cannot be downloaded in the test suite. The batches written here are in the real format
(Python 2 pickles in ``cifar-10-batches-py/``, packed as ``cifar-10-python.tar.gz`` for the
download test), with a learnable pattern: a square lit in one colour at a place that names the class.
"""

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.torch import load_file

from zerotune.cli.main import main
from zerotune.data import download

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
QUIET = ["log.progress=false", "log.tensorboard=false", "train.threads=1"]
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def run_cli(command: str, recipe: str, runs, name: str, *overrides: str, extra: tuple[str, ...] = ()) -> dict:
    """``zerotune COMMAND RECIPE`` as a user would run it, with overrides; the run's metrics.json."""
    args = [command, str(RECIPES / recipe), *extra, "--runs-dir", str(runs), "--name", name]
    assert main(args + [a for o in (*QUIET, *overrides) for a in ("--set", o)]) == 0
    return json.loads((Path(runs) / name / "metrics.json").read_text(encoding="utf-8"))


def pattern_batch(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """(data uint8 (n, 3072), labels): noise, and an 8x8 square at grid cell ``label`` in channel ``label % 3``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    rng.shuffle(y)
    x = rng.integers(0, 80, size=(n, 3, 32, 32), dtype=np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 4)
        x[i, k % 3, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = 255
    return x.reshape(n, 3072), [int(v) for v in y]


@pytest.fixture
def cifar_dir(tmp_path, py2_pickler):
    """``cifar-10-batches-py/`` with 5 x 60 training and 100 test images."""
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate(BATCHES):
        data, labels = pattern_batch(100 if name == "test_batch" else 60, seed=i)
        (folder / name).write_bytes(py2_pickler({b"batch_label": name.encode(), b"labels": labels, b"data": data}))
    meta = {b"label_names": [n.encode() for n in NAMES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(py2_pickler(meta))
    return folder


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def test_cifar10_resnet_downloads_checks_and_trains(cifar_dir, http_root, tmp_path, monkeypatch):
    # Serve the batches as cifar-10-python.tar.gz, with their own checksums in place of the real ones.
    served, base = http_root
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(cifar_dir, arcname="cifar-10-batches-py")
    (served / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
    real = download.DOWNLOADS["cifar10"]
    members = tuple(download.Resource(m.filename, _md5((cifar_dir / m.filename).read_bytes())) for m in real.members)
    archive = download.Resource("cifar-10-python.tar.gz", _md5(buf.getvalue()))
    monkeypatch.setitem(download.DOWNLOADS, "cifar10",
                        download.DatasetDownload((base,), (archive,), real.extract, members))
    target = tmp_path / "data" / "cifar10"
    metrics = run_cli("train", "cifar10_resnet.toml", tmp_path / "runs", "resnet", f"data.path={target}",
                      "train.max_steps=30", "train.batch_size=16")
    assert (target / "cifar-10-batches-py" / "test_batch").is_file()  # unpacked where the recipe says
    assert metrics["test"]["n"] == 100
    assert metrics["test"]["accuracy"] > 0.3  # chance is 0.1


def test_cifar10_vgg16_as_written_runs_on_cifar_batches(cifar_dir, tmp_path):
    metrics = run_cli("train", "cifar10_vgg.toml", tmp_path / "runs", "vgg", f"data.path={cifar_dir}",
                      "data.download=false", "train.max_steps=2", "train.batch_size=8")
    assert metrics["test"]["n"] == 100 and 0 <= metrics["test"]["accuracy"] <= 1
    weights = load_file(str(tmp_path / "runs" / "vgg" / "checkpoints" / "best" / "model.safetensors"))
    assert sum(1 for k in weights if k.endswith(".running_mean")) == 13  # VGG-16: 13 conv+BN layers


def test_cifar10_walkthrough_trains_freezes_then_fine_tunes_at_1e_4(cifar_dir, tmp_path):
    runs = tmp_path / "runs"
    small = [f"data.path={cifar_dir}", "data.download=false", "model.width=0.125"]
    run_cli("train", "cifar10_transfer_pretrain.toml", runs, "cifar10-animals", *small, "train.epochs=10",
            "train.batch_size=32")
    source = load_file(str(runs / "cifar10-animals" / "checkpoints" / "best" / "model.safetensors"))

    # Step 2, the recipe as written: everything frozen but a new head for the four vehicle classes.
    head = run_cli("finetune", "cifar10_transfer.toml", runs, "cifar10-vehicles-head", f"data.path={cifar_dir}",
                   "data.download=false", "train.epochs=6", extra=("--from", str(runs / "cifar10-animals")))
    frozen = load_file(str(runs / "cifar10-vehicles-head" / "checkpoints" / "best" / "model.safetensors"))
    assert all(np.array_equal(frozen[k], source[k]) for k in source if not k.startswith("head."))
    assert frozen["head.weight"].shape[0] == 4

    # Step 3: the top stage, the dense layer and the kept head train at 1e-4.
    tuned = run_cli("finetune", "cifar10_transfer.toml", runs, "cifar10-vehicles-ft", f"data.path={cifar_dir}",
                    "data.download=false", "train.epochs=2", "finetune.train_blocks=2", "optim.lr=1e-4",
                    extra=("--from", str(runs / "cifar10-vehicles-head"), "--strategy", "partial"))
    config = yaml.safe_load((runs / "cifar10-vehicles-ft" / "config.yaml").read_text(encoding="utf-8"))
    assert config["optim"]["lr"] == 1e-4 and config["finetune"]["strategy"] == "partial"
    after = load_file(str(runs / "cifar10-vehicles-ft" / "checkpoints" / "last" / "model.safetensors"))
    assert after.keys() == frozen.keys()  # same classes: step 2's head is kept, not replaced
    changed = {".".join(k.split(".")[:2]) if k.startswith("features.") else "head"
               for k in after if not np.array_equal(after[k], frozen[k])}
    assert changed == {"features.4", "features.8", "head"}  # the lower four stages stay as step 2 left them
    assert head["test"]["n"] == tuned["test"]["n"] == 40  # the four vehicle classes of the test batch
    assert tuned["test"]["accuracy"] > 0.25 and head["test"]["accuracy"] > 0.25  # chance is 0.25
