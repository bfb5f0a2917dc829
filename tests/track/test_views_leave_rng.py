"""No callback or view draws from the global random generators: a resumed run's dropout masks and
augmentations depend on them, so a view that moved them would make the resume differ from an
uninterrupted run (as the MFU probe's torch.randn once did)."""

import zerotune
from zerotune.config import load_config

VIEWS = ["log.tensorboard=true", "log.progress=false", "log.views_min_seconds=0", "log.histograms_every=2",
         "log.layer_stats_every=1", "log.figures_every=1", "log.pr_curves_every=1", "log.predictions_every=1",
         "log.worst_every=1", "log.activations=true", "train.threads=1"]


def train(tmp_path, name, *overrides):
    return zerotune.train(load_config(None, [*VIEWS, f"log.dir={tmp_path}", f"log.name={name}", *overrides]))


def test_cnn_views_leave_the_global_generators_alone(tmp_path, moved):
    train(tmp_path, "cnn", "data.name=digits", "model.name=cnn", "model.channels=[4, 8]", "model.dense=16",
          "train.epochs=2", "log.embeddings=true", "data.augment.noise_std=0.1")
    assert moved == []


def test_gpt_views_leave_the_global_generators_alone(tmp_path, corpus_file, lm_config, moved):
    cfg = lm_config(tmp_path, corpus_file, tmp_path / "cache", "gpt", *VIEWS, "model.dropout=0.1",
                    "log.attention_maps=true")
    zerotune.train(cfg)
    assert moved == []


def test_finetune_views_leave_the_global_generators_alone(tmp_path, moved):
    base = train(tmp_path, "base", "data.name=digits", "model.name=mlp", "model.hidden=[16]", "train.epochs=1",
                 "log.tensorboard=false")
    moved.clear()
    train(tmp_path, "ft", "data.name=digits", f"finetune.source={base.run_dir}", "finetune.strategy=lora",
          "train.epochs=2", "finetune.baseline=true")
    assert moved == []
