"""Property: whatever a recipe, a run directory's files or an OpenAI request body is mutated into, zerotune
ends with exit 0, or exit 2 and one line on stderr; never a traceback; a refused command changes nothing
on disk; the server never answers 5xx.

Hypothesis draws the mutations from a fixed seed (``derandomize``), a bounded number per test, so the
file runs the same way in CI and stays well under a minute on two cores: one tiny run is trained per
module and copied for each example, and the CLI is called in this process.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bad_input import call, command, train_tiny_run, tree_digest
from zerotune.tune.recipe_toml import recipe_toml

SETTINGS = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Numbers that break things where they land, but that no field can turn into hours of work or gigabytes
# (a 10**9-wide layer is valid input that a machine cannot hold; it is not what this test is about).
NUMBERS = st.sampled_from([0, 1, 2, -1, 3, 2**31, 2**70, -(2**70)]) | st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=6) | st.sampled_from(["", "3", "true", "iris", "1e-3"])
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
TOML_VALUES = st.recursive(SCALARS.filter(lambda v: v is not None), lambda inner: st.lists(inner, max_size=3),
                           max_leaves=4)


def _leaf_paths(tree, prefix=()) -> list[tuple]:
    """Every key path of a nested dict, down to two levels: where a value can be replaced or removed."""
    out = []
    if isinstance(tree, dict) and len(prefix) < 3:
        for key, value in tree.items():
            out.append((*prefix, key))
            out += _leaf_paths(value, (*prefix, key))
    return out


def _edit(tree, path, value, delete: bool):
    tree = json.loads(json.dumps(tree, allow_nan=True))  # a deep copy
    node = tree
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return tree


@st.composite
def mutations(draw, kind: str, values):
    """(a name for the report, a function that takes the file's bytes and returns its new bytes or "dir")."""
    # a field's value replaced or removed reaches the deepest checks: drawn as often as the rest together
    how = draw(st.sampled_from(["truncate", "bytes", "type", "empty", "dir"]) | st.sampled_from(["value", "delete"]))
    if how == "truncate":
        fraction = draw(st.floats(0, 0.99))
        return how, lambda b: b[:int(len(b) * fraction)]
    if how == "bytes":
        noise = draw(st.binary(min_size=1, max_size=40))
        return how, lambda b: noise
    if how == "type":  # the whole file one value of another JSON type
        value = draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
        return how, lambda b: _dump(kind, value)
    if how == "empty":
        return how, lambda b: b""
    if how == "dir":
        return how, lambda b: "dir"
    pick, value = draw(st.randoms(use_true_random=False)), draw(values)

    def edit(b):
        tree = _load(kind, b)
        paths = _leaf_paths(tree)
        if not paths:
            return b
        return _dump(kind, _edit(tree, pick.choice(paths), value, how == "delete"))

    return how, edit


def _load(kind: str, data: bytes):
    text = data.decode("utf-8")
    return json.loads(text) if kind == "json" else yaml.safe_load(text) if kind == "yaml" else tomllib.loads(text)


def _dump(kind: str, value) -> bytes:
    if kind == "json":
        return json.dumps(value).encode()
    if kind == "yaml":
        return yaml.safe_dump(value).encode()
    try:
        return recipe_toml(value).encode() if isinstance(value, dict) else f"x = {json.dumps(value)}\n".encode()
    except ValueError:
        return b"not = [toml"


def _apply(path: Path, mutate) -> None:
    new = mutate(path.read_bytes())
    path.unlink()
    if new == "dir":
        path.mkdir()
    else:
        path.write_bytes(new)


def check_outcome(code: int, out: str, err: str, root: Path, before: str, what: str) -> None:
    assert "Traceback" not in out + err, f"{what}\n{err}"
    assert code in (0, 2), f"{what}: exit {code}\n{err}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}\n{err}"
        assert tree_digest(root) == before, f"{what}: refused, but changed files\n{err}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("bad-input-property")


@pytest.fixture(scope="module")
def tiny_run(workspace):
    return train_tiny_run(workspace / "trained")


# -- a run directory's files ----------------------------------------------------------------------------

RUN_FILES = {  # file -> (how it is written, the commands that read it)
    "config.yaml": ("yaml", ["eval", "doctor", "summary", "resume", "report"]),
    "meta.json": ("json", ["eval", "doctor", "summary", "report"]),
    "metrics.json": ("json", ["doctor", "report"]),
    "env.json": ("json", ["report"]),
    "checkpoints/last/state.json": ("json", ["resume"]),
}


@st.composite
def run_file_cases(draw):
    file = draw(st.sampled_from(sorted(RUN_FILES)))
    kind, commands = RUN_FILES[file]
    return file, draw(st.sampled_from(commands)), draw(mutations(kind, JSON_VALUES))


@settings(max_examples=60, **SETTINGS)
@given(case=run_file_cases())
def test_a_mutated_run_file_gives_exit_0_or_one_line(capsys, workspace, tiny_run, case):
    file, name, (how, mutate) = case
    root = Path(tempfile.mkdtemp(dir=workspace))
    try:
        run = root / "run"
        shutil.copytree(tiny_run, run)
        (root / "out").mkdir()
        _apply(run / file, mutate)
        before = tree_digest(root)
        code, out, err = call(capsys, command(name, run, root / "out"))
        check_outcome(code, out, err, root, before, f"{name} with {file} mutated by {how}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- a recipe ---------------------------------------------------------------------------------------------

# the groups a recipe has; the command line bounds the run to 3 steps without TensorBoard, so that no
# mutation (a recipe cut to nothing trains the default CNN) makes an example long
RECIPE = {"data": {"name": "iris", "val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 1},
          "model": {"name": "mlp", "hidden": [8], "dropout": 0.1, "activation": "relu"},
          "optim": {"name": "adam", "lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.0},
          "schedule": {"name": "cosine", "warmup_steps": 1},
          "train": {"epochs": 1, "batch_size": 32, "seed": 0, "threads": 1},
          "log": {"progress": False, "name": "r"}}
BOUNDS = ["--set", "train.max_steps=3", "--set", "log.tensorboard=false"]


@settings(max_examples=40, **SETTINGS)
@given(mutation=mutations("toml", TOML_VALUES))
def test_a_mutated_recipe_gives_exit_0_or_one_line(capsys, monkeypatch, workspace, mutation):
    how, mutate = mutation
    root = Path(tempfile.mkdtemp(dir=workspace))
    try:
        monkeypatch.chdir(root)  # a mutated relative path lands here
        recipe = root / "recipe.toml"
        recipe.write_text(recipe_toml(RECIPE))
        _apply(recipe, mutate)
        before = tree_digest(root)
        code, out, err = call(capsys, ["train", recipe, "--runs-dir", root / "runs", *BOUNDS])
        check_outcome(code, out, err, root, before, f"train with the recipe mutated by {how}")
    finally:
        monkeypatch.chdir(workspace)  # out of the folder before it goes
        shutil.rmtree(root, ignore_errors=True)


# -- an OpenAI request body ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def openai_client(workspace):
    """A 2-step character GPT served in this process (a TestClient runs the app's lifespan: its scheduler)."""
    from starlette.testclient import TestClient

    import zerotune
    from zerotune.config import load_config
    from zerotune.serve import ServeOptions, create_app, load_served_model

    corpus = workspace / "corpus.txt"
    rng = random.Random(0)
    corpus.write_text("\n".join(f"{rng.choice(['the cat', 'a dog'])} {rng.choice(['sees', 'likes'])} the moon."
                                for _ in range(300)) + "\n")
    cfg = load_config(None, ["data.name=corpus", f"data.path={corpus}", f"data.cache_dir={workspace / 'cache'}",
                             "data.block_size=16", "data.windows_per_epoch=64", "data.eval_windows=8",
                             "model.name=gpt", "model.n_layer=1", "model.n_head=2", "model.n_embd=16",
                             "train.batch_size=32", "train.epochs=1", "log.tensorboard=false", "log.progress=false",
                             f"log.dir={workspace}", "log.name=lm"])
    run = zerotune.train(cfg).run_dir
    with TestClient(create_app(load_served_model(run), ServeOptions(max_wait_ms=5))) as client:
        yield client


VALID_BODIES = [("/v1/completions", {"model": "lm", "prompt": "the cat", "max_tokens": 3, "temperature": 0}),
                ("/v1/chat/completions", {"model": "lm", "messages": [{"role": "user", "content": "hi"}],
                                          "max_tokens": 3, "temperature": 0.5, "seed": 1})]
FIELDS = ["model", "prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stop",
          "stream", "stream_options", "seed", "echo"]


@st.composite
def request_cases(draw):
    path, body = draw(st.sampled_from(VALID_BODIES))
    body = json.loads(json.dumps(body))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["set", "delete", "message"]))
        if how == "set":
            body[draw(st.sampled_from(FIELDS))] = draw(JSON_VALUES)
        elif how == "delete" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif how == "message" and isinstance(body.get("messages"), list) and body["messages"]:
            message = body["messages"][0]
            if isinstance(message, dict):
                message[draw(st.sampled_from(["role", "content", "name"]))] = draw(JSON_VALUES)
    return path, body


@settings(max_examples=80, **SETTINGS)
@given(case=request_cases())
def test_a_mutated_openai_request_never_gets_a_5xx(openai_client, case):
    path, body = case
    r = openai_client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert r.status_code < 500, (path, body, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text
