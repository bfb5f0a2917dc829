"""train.precision = "auto": bf16 only where the device runs it natively; an emulated bf16 says what it costs."""

import pytest
import torch
import yaml

import zerotune
from zerotune.compute import precision
from zerotune.config import load_config


@pytest.fixture
def cpu(monkeypatch):
    """A CPU with the given flags and measured bf16 slowdown (the caches cleared before and after)."""

    def make(flags, slowdown):
        monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(precision, "bf16_slowdown", lambda: slowdown)
        precision.native_bf16.cache_clear()

    yield make
    precision.native_bf16.cache_clear()


def test_auto_is_float32_on_a_cpu_without_native_bf16(cpu):
    cpu({"avx2", "fma"}, 14.0)
    assert precision.resolve_precision("auto", torch.device("cpu")) == "32"


def test_auto_is_bf16_where_the_flags_allow_it_and_the_timing_confirms_it(cpu):
    cpu({"avx512f", "avx512_bf16"}, 0.5)
    assert precision.resolve_precision("auto", torch.device("cpu")) == "bf16"
    cpu({"avx512f", "avx512_bf16"}, 3.0)  # a flag alone does not make the kernel fast
    assert precision.resolve_precision("auto", torch.device("cpu")) == "32"


def test_explicit_bf16_on_an_emulating_cpu_trains_with_a_warning(cpu, capsys):
    cpu({"avx2"}, 13.4)
    assert precision.resolve_precision("bf16", torch.device("cpu")) == "bf16"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: train.precision 'bf16' is emulated") and "13x slower" in err[0]
    assert precision.resolve_precision("32", torch.device("cpu")) == "32"
    assert capsys.readouterr().err == ""


def test_the_timing_leaves_the_global_random_state_alone():
    before = torch.get_rng_state()
    precision.bf16_slowdown.__wrapped__()
    assert torch.equal(before, torch.get_rng_state())


def test_default_is_auto_and_the_run_records_the_precision_it_trained_in(tmp_path, cpu):
    cpu({"avx2"}, 13.0)
    assert load_config(None, []).train.precision == "auto"
    result = zerotune.train(load_config(None, [
        "data.name=iris", "model.name=mlp", "model.hidden=[8]", "train.epochs=1", "log.tensorboard=false",
        "log.progress=false", f"log.dir={tmp_path}", "log.name=auto"]))
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["train"]["precision"] == "32"


def test_no_shipped_recipe_sets_a_precision_that_is_slow_on_a_common_cpu():
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.*ml"))
    assert len(recipes) > 10
    for recipe in recipes:
        assert load_config(recipe).train.precision in ("auto", "32"), recipe.name
