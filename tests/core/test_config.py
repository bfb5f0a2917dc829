from pathlib import Path

import pytest

from zerotune.config import Config, OptimConfig, apply_overrides, build_config, load_config, read_recipe
from zerotune.errors import UserError

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.*"))


def test_defaults_are_the_digits_cnn():
    cfg = Config()
    assert (cfg.data.name, cfg.model.name, cfg.optim.name) == ("digits", "cnn", "adam")


def test_cli_override_and_python_construction_agree():
    from_cli = load_config(None, ["optim.lr=3e-4", "model.name=mlp", "model.hidden=[32, 16]"])
    from_py = Config(optim=OptimConfig(lr=3e-4), model={"name": "mlp", "hidden": [32, 16]})
    assert from_cli.to_dict() == from_py.to_dict()
    assert from_cli.optim.lr == 3e-4 and from_cli.model.options == {"hidden": [32, 16]}


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.name for r in RECIPES])
def test_every_recipe_is_headed_by_its_command_and_validates(recipe):
    first = recipe.read_text().splitlines()[0]
    assert first.startswith("# zerotune ") and recipe.name in first
    cfg = load_config(recipe)
    assert cfg.to_dict() == build_config(cfg.to_dict()).to_dict()  # the saved form round-trips


def test_recipes_exist():
    assert {r.name for r in RECIPES} >= {"digits_cnn.toml", "digits_mlp.toml", "iris_softmax.toml",
                                         "diabetes_linear.yaml"}


@pytest.mark.parametrize("override, expected", [
    ("optim.lr=-1", "optim.lr: Input should be greater than 0 (got -1)"),
    ("optim.lr=fast", "optim.lr: Input should be a valid number"),
    ("optim.name=lbfgs", "optim.name: Input should be 'sgd', 'adam', 'adamw' or 'rmsprop'"),
    ("optim.foo=1", "optim.foo: unknown key; allowed: name, lr,"),
    ("colour.x=1", "colour: unknown key; allowed: data, model, optim, schedule, train, log"),
    ("train.epochs=0", "train.epochs: Input should be greater than or equal to 1"),
    ("train.device=tpu", "train.device: String should match pattern"),
    ("model.dropout=2", "model.dropout: Input should be less than 1"),
    ("model.widths=[1]", "model.widths: unknown option (options: channels, kernel_size"),
    ("data.val_fraction=0.75", "val_fraction + test_fraction must be below 0.9"),
])
def test_invalid_values_name_the_field_and_what_is_allowed(override, expected):
    with pytest.raises(UserError) as e:
        load_config(None, [override])
    msg = str(e.value)
    assert expected in msg and "\n" not in msg


def test_unknown_model_is_named():
    with pytest.raises(UserError, match="unknown model .alexnet.; available: cnn, "):
        load_config(None, ["model.name=alexnet"])


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim\nlr = 1")
    with pytest.raises(UserError, match="is not valid TOML"):
        read_recipe(bad)
    with pytest.raises(UserError, match="does not exist"):
        read_recipe(tmp_path / "missing.yaml")
    other = tmp_path / "r.json"
    other.write_text("{}")
    with pytest.raises(UserError, match="allowed: .toml, .yaml, .yml"):
        read_recipe(other)


def test_yaml_and_toml_give_the_same_config(tmp_path):
    (tmp_path / "a.toml").write_text('[optim]\nname = "sgd"\nlr = 0.1\n[train]\nepochs = 3\n')
    (tmp_path / "a.yaml").write_text("optim: {name: sgd, lr: 0.1}\ntrain: {epochs: 3}\n")
    assert load_config(tmp_path / "a.toml").to_dict() == load_config(tmp_path / "a.yaml").to_dict()


def test_precision_32_may_be_written_as_a_number(tmp_path):
    (tmp_path / "r.toml").write_text('[train]\nprecision = 32\n')
    assert load_config(tmp_path / "r.toml").train.precision == "32"
    assert load_config(None, ["train.precision=bf16", "train.precision=32"]).train.precision == "32"
    with pytest.raises(UserError, match="train.precision"):
        load_config(None, ["train.precision=16"])


def test_overrides_reject_malformed_text():
    with pytest.raises(UserError, match="must look like group.field=value"):
        apply_overrides({}, ["optim.lr"])
    with pytest.raises(UserError, match="must name a group and a field"):
        apply_overrides({}, ["lr=1"])
