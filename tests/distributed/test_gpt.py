"""The GPT recipe under DDP: windows of the corpus shared across ranks, perplexity gathered across ranks."""

import contextlib
import io
import json
from pathlib import Path

import zerotune
from zerotune.cli.main import main
from zerotune.config import load_config

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "recipes/shakespeare_char_gpt.toml"
SHORT = ["model.n_layer=1", "model.n_head=2", "model.n_embd=32", "data.block_size=32", "data.windows_per_epoch=256",
         "data.eval_windows=32", "train.epochs=2", "train.batch_size=16", "train.threads=1", "log.graph=false",
         "log.embeddings=false", "log.sample_tokens=8", "log.progress=false"]


def test_short_gpt_in_two_ranks_matches_one_process(corpus_file, tmp_path):
    settings = [*SHORT, f"data.path={corpus_file}", f"data.cache_dir={tmp_path / 'cache'}", f"log.dir={tmp_path}"]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["train", str(ROOT / RECIPE), "--nproc", "2", *[a for s in settings for a in ("--set", s)],
                     "--set", "log.name=two"])
    assert code == 0, err.getvalue()
    one = zerotune.train(load_config(ROOT / RECIPE, [*settings, "log.name=one"])).run_dir
    two, one = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("two", one.name))
    assert two["training"]["steps"] == one["training"]["steps"] == 2 * 256 // 16
    # the same steps up to the order of the gradient reduction (AdamW, clipping at 1.0)
    assert abs(two["val"]["loss"] - one["val"]["loss"]) < 1e-3
    assert two["val"]["loss"] < 3.0  # it learnt: a uniform guess over the corpus's ~25 characters is ln 25 = 3.2
