"""The doctor on deliberately broken runs trained for real (digits MLP, a hundred steps or so each)."""

from __future__ import annotations

from pathlib import Path

from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.pipeline.train import train
from zerotune.track.events import read_run_events

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "digits_mlp.toml"
QUIET = ["log.images=false", "log.embeddings=false", "log.graph=false", "log.figures_every=0",
         "log.pr_curves_every=0", "log.worst_every=0", "log.predictions_every=0", "log.progress=false"]
PLAIN_MLP = ["model.dropout=0", "model.batch_norm=false", "optim.weight_decay=0"]


def findings(tmp_path, name: str, overrides: list[str]) -> dict[str, str]:
    result = train(load_config(RECIPE, QUIET + overrides + [f"log.dir={tmp_path}", f"log.name={name}"]))
    return {f.id: f.severity for f in result.findings}


def serious(found: dict[str, str]) -> set[str]:
    return {k for k, v in found.items() if v in ("high", "medium")}


def test_too_high_a_learning_rate(tmp_path):
    found = findings(tmp_path, "high-lr", ["optim.lr=1.0", "train.max_steps=100"])
    assert {"lr_too_high", "diverged"} & serious(found)


def test_too_low_a_learning_rate(tmp_path):
    assert "lr_too_low" in serious(findings(tmp_path, "low-lr", ["optim.lr=1e-6", "train.max_steps=100"]))


def test_tiny_data_without_regularisation_overfits(tmp_path):
    found = findings(tmp_path, "tiny", PLAIN_MLP + ["data.train_per_class=3", "schedule.name=constant", "optim.lr=1e-2",
                                                    "train.batch_size=30", "train.epochs=40"])
    assert "overfitting" in serious(found)


def test_a_deep_sigmoid_mlp_has_vanishing_gradients(tmp_path, capsys):
    sigmoid = ["--set", "model.hidden=[64,64,64,64,64,64,64,64]", "--set", "model.activation=sigmoid",
               "--set", "optim.name=sgd", "--set", "optim.lr=0.05", "--set", "train.max_steps=60"]
    sets = [a for o in QUIET + PLAIN_MLP for a in ("--set", o)]
    assert main(["train", str(RECIPE), *sets, *sigmoid, "--runs-dir", str(tmp_path), "--name", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "doctor high: vanishing_gradients:" in out and "(fix: --set model.activation=relu)" in out
    text = read_run_events(tmp_path / "sigmoid", texts=True).texts["doctor/findings"]
    assert "`vanishing_gradients`" in text  # the Text tab holds every finding
    assert main(["doctor", str(tmp_path / "sigmoid")]) == 0
    assert "HIGH   vanishing_gradients" in capsys.readouterr().out


def test_a_rare_class_poorly_recalled_is_class_imbalance(tmp_path):
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=1000, n_features=8, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               weights=[0.85, 0.10, 0.05], class_sep=0.8, random_state=0)  # examples/imbalanced_csv.py
    table = tmp_path / "imbalanced.csv"
    table.write_text("\n".join([",".join([f"x{i}" for i in range(8)] + ["label"])] +
                               [",".join(f"{v:.5g}" for v in row) + f",{c}" for row, c in zip(x, y)]), encoding="utf-8")
    found = findings(tmp_path, "imbalanced", ["data.name=csv", f"data.path={table}", "model.name=mlp",
                                             "model.hidden=[32]", "train.epochs=10"])
    assert "class_imbalance" in found


def test_the_report_shows_the_findings(tmp_path):
    findings(tmp_path, "low", ["optim.lr=1e-6", "train.max_steps=40"])
    assert main(["report", str(tmp_path / "low"), "--format", "md"]) == 0
    report = (tmp_path / "low" / "report.md").read_text(encoding="utf-8")
    assert "## doctor (zerotune doctor)" in report and "| high | lr_too_low |" in report


def test_the_healthy_digits_mlp_recipe_has_no_serious_finding(tmp_path):
    """The recipe as shipped, all 800 steps (the CNN and GPT recipes, too long here, are in docs/tuning.md)."""
    assert not serious(findings(tmp_path, "recipe", []))
