"""The hyperparameters a run shows: integers stay integers, and data options its data set ignores are
left out, in TensorBoard's HPARAMS values, `zerotune report` and `zerotune runs`."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

from zerotune.doctor.report import write_report

pytest.importorskip("tensorboard")

QUIET = ["log.progress=false", "log.graph=false", "log.embeddings=false", "log.images=false", "train.threads=1"]
LM = ["data.name=corpus", "data.block_size=32", "data.windows_per_epoch=64", "data.eval_windows=16", "model.name=gpt",
      "model.n_layer=2", "model.n_head=2", "model.n_embd=32", "optim.lr=0.01", "train.batch_size=32", "train.epochs=1",
      "log.sample_tokens=0", "log.attention_maps=false", *QUIET]
TABLE = ["data.name=synthetic_regression", "data.n_samples=200", "data.n_features=5", "model.name=mlp",
         "model.hidden=[16]", "train.epochs=1", *QUIET]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_file):
    from zerotune.pipeline.train import train
    from zerotune.config import load_config

    root = tmp_path_factory.mktemp("hparam-kinds")
    train(load_config(None, [*LM, f"data.path={corpus_file}", f"data.cache_dir={root / 'cache'}", f"log.dir={root}",
                             "log.name=lm"]))
    train(load_config(None, [*TABLE, f"log.dir={root}", "log.name=table"]))
    return root


def report_rows(run_dir, tmp_path) -> dict[str, str]:
    text = write_report(run_dir, tmp_path / f"{run_dir.name}.html").read_text()
    section = text.split("<h2>hyperparameters</h2>")[1].split("<h2>")[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", section)
    return {html.unescape(k): html.unescape(v) for k, v in rows}


def test_report_keeps_integers(runs, tmp_path):
    lm = report_rows(runs / "lm", tmp_path)
    assert lm["data.block_size"] == "32" and lm["train.batch_size"] == "32" and lm["model.n_layer"] == "2"
    assert lm["optim.lr"] == "0.01"  # a float stays a float
    assert report_rows(runs / "table", tmp_path)["data.n_samples"] == "200"


def test_report_leaves_out_the_data_options_of_other_data_kinds(runs, tmp_path):
    lm = report_rows(runs / "lm", tmp_path)
    assert {"data.block_size", "data.tokenizer", "data.val_fraction"} <= set(lm)
    assert not [k for k in lm if k.startswith(("data.augment.", "data.n_", "data.max_length", "data.normalize"))]
    table = report_rows(runs / "table", tmp_path)
    assert {"data.n_samples", "data.n_features", "data.normalize"} <= set(table)
    mixup = ("data.augment.mixup_alpha", "data.augment.mix_prob")  # mixup also mixes table rows
    assert not [k for k in table if k.startswith(("data.augment.", "data.block_size", "data.tokenizer",
                                                  "data.max_length", "data.text_field")) and k not in mixup]


def test_runs_json_keeps_integers(runs):
    proc = subprocess.run([sys.executable, "-m", "zerotune", "runs", str(runs), "--json"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r["hparams"] for r in json.loads(proc.stdout)}
    block = rows["lm"]["data.block_size"]
    assert block == 32 and type(block) is int and rows["lm"]["train.epochs"] == 1  # 32, not 32.0
    assert "data.augment.flip" not in rows["lm"] and "data.vocab_size" not in rows["table"]
