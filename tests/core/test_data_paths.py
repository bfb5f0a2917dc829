"""Data paths: relative to the recipe file, recorded absolute, shipped with the repository."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from zerotune.cli.main import main
from zerotune.config import load_config, read_recipe

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.*"))


def _table(path: Path, rows: int = 60, seed: int = 0) -> None:
    import random

    rng = random.Random(seed)
    lines = ["a,b,y"]
    for _ in range(rows):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        lines.append(f"{a:.4f},{b:.4f},{int(a + b > 0)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """recipes/tab.toml naming ../data/t.csv, and a working directory elsewhere."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "data").mkdir()
    _table(tmp_path / "data" / "t.csv")
    (tmp_path / "recipes" / "tab.toml").write_text(
        '[data]\nname = "csv"\npath = "../data/t.csv"\n[model]\nname = "mlp"\nhidden = [8]\n'
        "[train]\nepochs = 1\nbatch_size = 16\nthreads = 1\n[log]\nprogress = false\ntensorboard = false\n",
        encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return tmp_path


def test_recipe_paths_are_relative_to_the_recipe_and_overrides_to_the_current_directory(project):
    cfg = load_config(project / "recipes" / "tab.toml")
    assert cfg.data.path == str(project / "data" / "t.csv")
    cfg = load_config(project / "recipes" / "tab.toml", ["data.path=../data/t.csv", "data.cache_dir=~/tok"])
    assert cfg.data.path == str(project / "data" / "t.csv")  # from elsewhere/, ../data is the same folder
    assert cfg.data.cache_dir == str(Path("~/tok").expanduser())
    two = project / "recipes" / "two.toml"
    two.write_text('[data]\nname = "csv"\npath = ["../data/t.csv", "../data/u.csv"]\n', encoding="utf-8")
    assert load_config(two).data.path == [str(project / "data" / "t.csv"), str(project / "data" / "u.csv")]
    (project / "parent").mkdir()
    for source, expected in (("../parent", str(project / "parent")), ("minilm-l6", "minilm-l6")):
        two.write_text(f'[finetune]\nsource = "{source}"\n', encoding="utf-8")
        assert load_config(two).finetune.source == expected  # a directory beside the recipe; an alias stays
    cfg = load_config(None, ["data.name=csv", "data.path=[x.csv, sub/../y.csv]"])
    assert cfg.data.path == [str(project / "elsewhere" / "x.csv"), str(project / "elsewhere" / "y.csv")]


def test_a_run_works_from_any_working_directory(project, monkeypatch, capsys):
    runs = project / "runs"
    assert main(["train", str(project / "recipes" / "tab.toml"), "--runs-dir", str(runs), "--name", "r"]) == 0
    recorded = yaml.safe_load((runs / "r" / "config.yaml").read_text(encoding="utf-8"))
    assert recorded["data"]["path"] == str(project / "data" / "t.csv")
    monkeypatch.chdir("/")
    capsys.readouterr()
    assert main(["eval", str(runs / "r"), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "test"
    assert main(["export", str(runs / "r"), "--format", "torchscript"]) == 0  # checked against the run's data
    assert (runs / "r" / "export" / "model.pt").is_file()


def _data_paths(recipe: Path) -> list[str]:
    raw = read_recipe(recipe)
    out = []
    for group, field in (("data", "path"), ("data", "test_path"), ("data", "cache_dir")):
        value = raw.get(group, {}).get(field)
        out += value if isinstance(value, list) else [value] if value else []
    return out


# Data too large to ship that a recipe fetches into data/ on first use (with data.download = true, or
# with a script its header names), or that a script in the repository generates, as the header says.
FETCHED_BY = {"california_housing.csv": "python scripts/fetch_california_housing.py",
              "pretrain.txt": "python scripts/make_sft_data.py", "train.jsonl": "python scripts/make_sft_data.py",
              "orders.jsonl": "python scripts/make_sft_smollm2_data.py",
              "preference.jsonl": "python scripts/make_preference_data.py"}


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.name for r in RECIPES])
def test_every_recipe_reads_data_shipped_in_the_repository(recipe):
    text = recipe.read_text(encoding="utf-8")
    assert "../shared" not in text
    for value in _data_paths(recipe):
        path = (recipe.parent / value).resolve()
        assert path.is_relative_to(ROOT), f"{recipe.name}: {value}"
        fetched = read_recipe(recipe)["data"].get("download") or FETCHED_BY.get(path.name, "\0") in text
        assert path.exists() or (fetched and path.is_relative_to(ROOT / "data")), f"{recipe.name}: {value}"


def test_shipped_data_carries_its_origin_and_licence():
    notes = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for name in ("tinyshakespeare.txt", "amazon_cells_labelled.txt", "yelp_labelled.txt", "CC BY 4.0", "public domain"):
        assert name in notes
    assert "Kotzias" in (ROOT / "data" / "sentiment" / "readme.txt").read_text(encoding="utf-8")


@pytest.fixture
def copied(tmp_path, monkeypatch):
    """recipes/ and data/ copied beside nothing else, and a working directory elsewhere."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "recipes", clone / "recipes")
    shutil.copytree(ROOT / "data", clone / "data")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return clone


def test_gpt_recipe_runs_from_a_copy_of_recipes_and_data(copied, tmp_path, monkeypatch, capsys):
    short = ["train.max_steps=2", "train.precision=32", "train.threads=1", "data.windows_per_epoch=48",
             "data.eval_windows=2", "model.n_layer=1", "model.n_embd=32", "log.sample_tokens=0",
             "log.attention_maps=false", "log.graph=false", "log.tensorboard=false",
             f"data.cache_dir={tmp_path / 'tok'}"]
    args = ["train", str(copied / "recipes" / "shakespeare_char_gpt.toml"), "--runs-dir", "runs", "--name", "gpt",
            "--no-progress"]
    assert main(args + [a for s in short for a in ("--set", s)]) == 0
    run = tmp_path / "cwd" / "runs" / "gpt"
    recorded = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert recorded["data"]["path"] == str(copied / "data" / "tinyshakespeare.txt")
    monkeypatch.chdir("/")
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "val", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["perplexity"] > 1


def test_sentiment_recipe_runs_from_a_copy_of_recipes_and_data(copied, tmp_path, tiny_bert, monkeypatch, capsys):
    short = ["train.epochs=1", "train.threads=1", "train.batch_size=64", "finetune.baseline=false",
             "log.tensorboard=false"]
    args = ["finetune", str(copied / "recipes" / "finetune_sentiment.toml"), "--from", str(tiny_bert),
            "--runs-dir", "runs", "--name", "lora", "--no-progress"]
    assert main(args + [a for s in short for a in ("--set", s)]) == 0
    run = tmp_path / "cwd" / "runs" / "lora"
    recorded = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert recorded["data"]["test_path"] == str(copied / "data" / "sentiment" / "yelp_labelled.txt")
    monkeypatch.chdir("/")
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1000  # every Yelp sentence
