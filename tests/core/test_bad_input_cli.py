"""Bad input on the command line: exit 2, one line on stderr naming the cause, and nothing written.

Each case was an internal error (exit 1), a warning dump, or a silent misreading before; the CLI is
called in this process, on copies of one tiny trained run.
"""

import pytest

from bad_input import assert_refused, call, command, copy_run, train_tiny_run, tree_digest

from zerotune.run.checksums import write_checksums


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("bad-input-runs"))


@pytest.fixture
def work(tmp_path, tiny_run):
    """(a copy of the tiny run, a folder for outputs) inside `tmp_path`, which is hashed before and after."""
    (tmp_path / "out").mkdir()
    return copy_run(tiny_run, tmp_path / "run"), tmp_path / "out"


def refused_and_unchanged(capsys, root, argv, *needles) -> str:
    before = tree_digest(root)
    line = assert_refused(*call(capsys, argv), *needles)
    assert tree_digest(root) == before, "a refused command changed files"
    return line


# -- a run directory's files ----------------------------------------------------------------------

def _not_utf8(path):
    path.write_bytes(b"data:\n  name: iris\xff\xfe\n")


def _directory(path):
    path.unlink()
    path.mkdir()


def _empty(path):
    path.write_text("")


CONFIG_DAMAGE = {"not UTF-8": (_not_utf8, "not UTF-8"), "a directory": (_directory, "is a directory"),
                 "empty": (_empty, "is empty")}
READERS = ["eval", "resume", "finetune", "export", "serve", "doctor", "report", "generate", "summary", "profile"]


@pytest.mark.parametrize("damage", CONFIG_DAMAGE)
@pytest.mark.parametrize("name", READERS)
def test_a_damaged_config_yaml_is_one_line_in_every_command_that_reads_it(capsys, work, name, damage):
    run, out = work
    spoil, said = CONFIG_DAMAGE[damage]
    spoil(run / "config.yaml")
    refused_and_unchanged(capsys, run.parent, command(name, run, out), str(run / "config.yaml"), said)


@pytest.mark.parametrize("file,content,names,said", [
    ("meta.json", "{}", ["eval", "export", "summary", "finetune", "doctor", "report"], "source: Field required"),
    ("meta.json", "[]", ["eval", "export", "summary", "finetune", "doctor", "report"], "must hold an object, not a list"),
    ("meta.json", '{"source": "iris", "task": "classification", "input_shape": [true], "num_classes": 3}',
     ["eval", "doctor"], "input_shape.0"),
    ("metrics.json", "[]", ["doctor", "report"], "must hold an object, not a list"),
    ("metrics.json", '{"test": {"confusion_matrix": [[1, 2]]}}', ["report"], "confusion_matrix must be 1 x 1"),
    ("env.json", "{garbled", ["report"], "is not valid JSON"),
    ("env.json", "7", ["report"], "must hold an object, not a number"),
])
def test_a_damaged_run_file_is_one_line_naming_it(capsys, work, file, content, names, said):
    run, out = work
    (run / file).write_text(content)
    for name in names:
        refused_and_unchanged(capsys, run.parent, command(name, run, out), str(run / file), said)


def test_a_checkpoint_state_that_is_not_an_object_is_refused_on_resume(capsys, work):
    run, out = work
    (run / "checkpoints" / "last" / "state.json").write_text("[1, 2]")
    write_checksums(run / "checkpoints" / "last")  # as if saved so: the content is checked, not only its checksum
    refused_and_unchanged(capsys, run.parent, command("resume", run, out), "state.json must hold an object")


def test_the_run_itself_still_reads(capsys, work):
    run, out = work
    code, text, err = call(capsys, ["eval", run, "--json"])
    assert code == 0 and '"accuracy"' in text, err


# -- recipes and overrides --------------------------------------------------------------------------

TRAIN = ["train", "--no-progress", "--set", "data.name=iris", "--set", "model.name=logistic_regression",
         "--set", "train.epochs=1", "--set", "log.tensorboard=false"]


@pytest.mark.parametrize("override,said", [
    ("optim.betas=[2,3]", "optim.betas.0: Input should be less than 1"),
    ("optim.betas=[0.9,-0.1]", "optim.betas.1: Input should be greater than or equal to 0"),
    ("train.seed=100000000000000000000", "train.seed: Input should be less than or equal to 4294967295"),
    ("train.seed=-1", "train.seed: Input should be greater than or equal to 0"),
    ("data.split_seed=4294967296", "data.split_seed"),
    ("train.epochs=true", "train.epochs: must be a number, not a boolean"),
    ("optim.lr=false", "optim.lr: must be a number, not a boolean"),
    ("data.classes=[0, true]", "data.classes.1: must be a number, not a boolean"),
    ("model.dense=true", "model.dense: must be a number, not a boolean"),
    ("train.threads=10000", "train.threads must be a positive integer up to"),
    ("finetune.strategy=lora", "use `zerotune finetune RECIPE --from RUN`"),
    ("distill.temperature=2", "use `zerotune distill RECIPE --teacher RUN`"),
    ("data.classes=[1]", "has 1 class ('versicolor'); classification needs at least 2"),
])
def test_a_bad_override_is_refused_before_a_run_directory_exists(capsys, tmp_path, override, said):
    runs = tmp_path / "runs"
    argv = [*TRAIN, "--runs-dir", runs, "--set", override]
    if override.startswith("model."):
        argv += ["--set", "model.name=cnn", "--set", "data.name=digits"]
    refused_and_unchanged(capsys, tmp_path, argv, said)
    assert not runs.exists()


def test_a_recipes_finetune_group_waits_for_a_source_but_a_finetune_override_to_train_is_refused(tmp_path, capsys):
    from zerotune.config import load_config

    recipe = tmp_path / "r.toml"
    recipe.write_text('[data]\nname = "iris"\n\n[finetune]\nstrategy = "lora"\n')  # one recipe, both uses
    assert load_config(recipe).finetune.strategy == "lora"
    # the Python API gives the source (or a distillation's teacher) after loading
    assert load_config(recipe, ["finetune.lora_rank=4"]).finetune.lora_rank == 4
    for option, needle in (("finetune.lora_rank=4", "finetune.lora_rank applies to a fine-tune, but finetune.source"),
                           ("distill.temperature=4", "distill.temperature applies to a distillation")):
        code, _, err = call(capsys, ["train", recipe, "--runs-dir", tmp_path / "runs", "--set", option])
        assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "runs").exists()


def test_threads_name_the_cpus_this_process_may_use(capsys, tmp_path):
    from zerotune.compute.threads import available_cpus

    line = refused_and_unchanged(capsys, tmp_path, [*TRAIN, "--runs-dir", tmp_path / "runs", "--set",
                                                    f"train.threads={available_cpus() + 1}"], "train.threads")
    assert f"up to {available_cpus()}," in line


def test_a_model_size_of_zero_is_refused_without_pytorch_warnings(capsys, tmp_path, recwarn):
    refused_and_unchanged(capsys, tmp_path, ["train", "--no-progress", "--runs-dir", tmp_path / "runs", "--set",
                                             "model.channels=[0]"], "model.channels.0: Input should be greater than")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_test_fraction_zero_trains_and_evaluates_on_val(capsys, tmp_path):
    code, out, err = call(capsys, [*TRAIN, "--runs-dir", tmp_path, "--name", "r", "--set", "data.test_fraction=0"])
    assert code == 0, err
    assert "val (best checkpoint): accuracy" in out
    import json

    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["test"] == {"n": 0} and metrics["val"]["n"] > 0
    refused_and_unchanged(capsys, tmp_path, ["eval", tmp_path / "r"], "the test split", "is empty")
    code, out, err = call(capsys, ["eval", tmp_path / "r", "--split", "val"])
    assert code == 0, err


@pytest.mark.parametrize("recipe,said", [("{tmp}", "is a directory, not a file"),
                                         ("/dev/zero", "is not a regular file"),
                                         ("{tmp}/missing.toml", "does not exist")])
def test_a_recipe_that_is_not_a_file_is_said_to_be_what_it_is(capsys, tmp_path, recipe, said):
    refused_and_unchanged(capsys, tmp_path, ["train", recipe.format(tmp=tmp_path)], "recipe", said)
