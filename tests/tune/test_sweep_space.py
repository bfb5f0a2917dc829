"""`--param KEY=SPEC` of `zerotune sweep`: parsing, the schema check, and one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from zerotune.cli.main import main
from zerotune.config import load_config
from zerotune.errors import UserError
from zerotune.tune.recipe_toml import recipe_toml
from zerotune.tune.sweep_space import Param, check_params, parse_param, with_values

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_mlp.toml")


@pytest.mark.parametrize("text, expected", [
    ("optim.lr=loguniform:1e-4:1e-1", Param("optim.lr", "loguniform", 1e-4, 0.1, log=True)),
    ("model.dropout=uniform:0:0.5", Param("model.dropout", "uniform", 0.0, 0.5)),
    ("train.batch_size=int:16:128", Param("train.batch_size", "int", 16, 128)),
    ("train.batch_size=int:16:128:log", Param("train.batch_size", "int", 16, 128, log=True)),
    ("optim.name=choice:adam,sgd", Param("optim.name", "choice", choices=("adam", "sgd"))),
    ("optim.lr=choice:1e-3,0.01", Param("optim.lr", "choice", choices=(1e-3, 0.01))),
    ("model.batch_norm=choice:true,false", Param("model.batch_norm", "choice", choices=(True, False))),
])
def test_specs_parse(text, expected):
    param = parse_param(text)
    assert param == expected
    assert Param.from_dict(param.to_dict()) == param  # as sweep.json keeps it


@pytest.mark.parametrize("text, says", [
    ("optim.lr=loguniform:1e-1:1e-4", "low 0.1 is above high 0.0001"),
    ("optim.lr=loguniform:0:1e-1", "a log scale needs a low bound above 0"),
    ("optim.lr=uniform:abc:1", "bound 'abc' is not a number"),
    ("train.batch_size=int:16:12.5", "bound '12.5' is not an integer"),
    ("optim.lr=uniform:0.1", "uniform needs two bounds"),
    ("optim.lr=normal:0:1", "unknown kind 'normal'; allowed: loguniform, uniform, int, choice"),
    ("optim.lr", "must look like KEY=SPEC"),
    ("lr=uniform:0:1", "KEY must name a group and a field"),
    ("log.name=choice:a,b", "the sweep sets it for each trial"),
    ("optim.name=choice:adam,adam", "lists a value twice"),
    ("optim.lr=uniform:nan:1", "must be finite"),
])
def test_bad_specs_are_refused(text, says):
    with pytest.raises(UserError, match=says):
        parse_param(text)


@pytest.mark.parametrize("text, says", [
    ("optim.foo=uniform:0:1", "optim.foo: unknown key; allowed: name, lr"),
    ("model.dropot=uniform:0:0.5", "model.dropot: unknown option"),
    ("model.dropout=uniform:0:1.5", "the value 1.5 is refused: .*model.dropout: Input should be less than 1"),
    ("optim.name=choice:adam,lbfgs", "the value 'lbfgs' is refused"),
    ("optim.lr=uniform:0:0.1", "the value 0.0 is refused: optim.lr: Input should be greater than 0"),
])
def test_values_the_schema_refuses_are_refused(text, says):
    base = load_config(RECIPE).to_dict()
    with pytest.raises(UserError, match=says):
        check_params([parse_param(text)], base)


def test_a_key_given_twice_is_refused():
    base = load_config(RECIPE).to_dict()
    with pytest.raises(UserError, match="--param optim.lr is given twice"):
        check_params([parse_param("optim.lr=uniform:0.1:0.2"), parse_param("optim.lr=uniform:0.1:0.3")], base)


@pytest.mark.parametrize("param, says", [
    ("optim.lr=loguniform:1e-1:1e-4", "error: --param optim.lr: low 0.1 is above high 0.0001"),
    ("optim.lr=loguniform:x:1e-1", "error: --param optim.lr: bound 'x' is not a number"),
    ("optim.nope=uniform:0:1", "error: --param optim.nope=uniform:0:1: optim.nope: unknown key;"),
    ("model.dropout=uniform:0:2", "error: --param model.dropout=uniform:0:2: the value 2.0 is refused"),
])
def test_cli_bad_spec_is_one_line_and_exit_2_and_writes_nothing(param, says, tmp_path, capsys):
    code = main(["sweep", RECIPE, "--param", param, "--trials", "2", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(says) and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_cli_resume_refuses_new_parameters(tmp_path, capsys):
    code = main(["sweep", "--resume", str(tmp_path), "--param", "optim.lr=uniform:0.1:0.2"])
    assert code == 2 and "drop --param" in capsys.readouterr().err


def test_with_values_sets_dotted_keys_with_their_types():
    raw = {"optim": {"lr": 1.0}, "model": {"name": "mlp"}}
    out = with_values(raw, {"optim.lr": 1e-5, "model.dropout": 0.25, "data.augment.flip": True})
    assert out == {"optim": {"lr": 1e-5}, "model": {"name": "mlp", "dropout": 0.25}, "data": {"augment": {"flip": True}}}
    assert raw == {"optim": {"lr": 1.0}, "model": {"name": "mlp"}}


def test_recipe_toml_reads_back_to_the_same_config(tmp_path):
    config = load_config(RECIPE, ["optim.lr=1e-05", "model.dropout=0.125", "train.early_stopping.patience=3",
                                  "log.sample_prompt='say \"hi\"\\n'"])
    path = tmp_path / "best.toml"
    path.write_text(recipe_toml(config.to_dict(), "zerotune train best.toml"), encoding="utf-8")
    assert path.read_text(encoding="utf-8").startswith("# zerotune train best.toml\n")
    assert load_config(path).to_dict() == config.to_dict()
